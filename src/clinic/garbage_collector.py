"""How each clinic process has Python's garbage collector treat it, once it has started.

A process builds most of what it will ever hold at startup (modules, models,
routes, schemas) and keeps it to the end. Python's collector would walk all of it
again at every full collection, which the garbage of requests and messages sets
off many times a minute. After startup the process freezes what it holds, out of
the collector's sight, and collects its youngest objects less often: the objects
of one request or message are mostly gone by then, so fewer are promoted and
examined again. docs/performance.md has the profile and the figures.
"""

import gc

YOUNG_THRESHOLD = 10_000
"""New objects (less those freed) between two collections of the youngest
generation; Python's default is 700."""


def settle_after_startup() -> None:
    """Collect once, freeze what survives, and collect the young less often from now on."""
    gc.collect()  # a frozen object is never collected: leave no garbage to freeze
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
