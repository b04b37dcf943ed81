# The cluster profile's load balancer: Debian 12's haproxy (2.6), configured by haproxy.cfg,
# which docker-compose.yml mounts from the repository.
FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/*
EXPOSE 1883 8080
CMD ["/usr/sbin/haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
