"""MongoDB: the stored documents and every query and write the clinic makes."""
