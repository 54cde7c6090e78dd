"""The DNS server of the names stage, Debian's dnsmasq, as `Blueprint.dns` starts it."""

# a DNS server that reads no file of the machine's (no /etc/dnsmasq.conf, resolv.conf or
# hosts), stays in the foreground as root in its own group (--group= changes none: a rootless
# world has no other user, and refuses setgroups), writes no pid file, keeps no cache (each
# query is forwarded, and its log shows it), logs each query to its own output (the lab's
# log, not the machine's syslog) and asks from the kernel's ephemeral ports (32768-60999)
DNSMASQ = ("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
           "--user=root", "--group=", "--pid-file=", "--log-facility=-", "--log-queries",
           "--cache-size=0", "--min-port=32768", "--max-port=60999", "--bind-interfaces")
