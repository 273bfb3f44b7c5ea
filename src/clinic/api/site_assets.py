"""The third-party files the documentation sites load, and the npm package each comes from.

The API serves them from ``docs_assets/`` beside this module and names the missing
ones; ``hatch_build.py`` copies them there out of the packages that
``docs-assets/package-lock.json`` pins, at install or image-build time. This module
imports nothing, so the build hook can run it from the source tree before the
package is installed.
"""

FOLDER = "docs_assets"
"""Where the files are, beside this module (ignored by git, shipped in the wheel)."""

MANIFEST = "manifest.json"
"""Written last by the build hook: the version, integrity and licence of each package."""

LICENCES = {"swagger-ui-dist": "Apache-2.0", "@asyncapi/react-component": "Apache-2.0"}
"""Each package's licence, as its package.json states it; the build hook checks it."""

FILES: dict[str, tuple[str, str]] = {
    # Swagger UI, for /docs.
    "swagger-ui/swagger-ui-bundle.js": ("swagger-ui-dist", "swagger-ui-bundle.js"),
    "swagger-ui/swagger-ui.css": ("swagger-ui-dist", "swagger-ui.css"),
    "swagger-ui/favicon-32x32.png": ("swagger-ui-dist", "favicon-32x32.png"),
    "swagger-ui/LICENSE": ("swagger-ui-dist", "LICENSE"),
    "swagger-ui/NOTICE": ("swagger-ui-dist", "NOTICE"),
    # The licences of what the bundle itself contains (React and others).
    "swagger-ui/swagger-ui-bundle.js.LICENSE.txt": (
        "swagger-ui-dist",
        "swagger-ui-bundle.js.LICENSE.txt",
    ),
    # The AsyncAPI React component's standalone browser bundle, for /asyncapi.
    "asyncapi/index.js": ("@asyncapi/react-component", "browser/standalone/index.js"),
    "asyncapi/default.min.css": ("@asyncapi/react-component", "styles/default.min.css"),
    "asyncapi/LICENSE": ("@asyncapi/react-component", "LICENSE"),
    "asyncapi/index.js.LICENSE.txt": (
        "@asyncapi/react-component",
        "browser/standalone/index.js.LICENSE.txt",
    ),
}
"""Each served file, by its path under ``FOLDER``: its package and its path in that package."""
