"""The course where labs cannot run (no CAP_NET_ADMIN), from what a real kernel did:

    stored_outputs, cells    a cell's outputs as stored in the course notebooks, shown in its
                             place (the hooks that notebook.setup() installs)
    traffic_log, log_traffic the widgets' probes as a real kernel answered them (traffic_log.json.gz),
                             and the root tool that logs them again
    course                   where the course's notebooks are found
"""
