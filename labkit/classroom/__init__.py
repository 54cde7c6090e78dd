"""The class on a JupyterHub: a service that collects every student's checks and shows them to
the instructors (service.py), over a store of the records (records.py)."""
