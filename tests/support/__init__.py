"""Test support: real Redis set-ups on 127.0.0.1 (single node, cluster, Sentinel, replica, memory, ACL).

Every process is a real ``redis-server`` on a free port with a directory of its own (so that
pytest-xdist workers never meet), every wait is bounded in time and in tries, and every process
is killed and reaped by whoever started it.
"""
