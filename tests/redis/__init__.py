"""The Redis share against Redis as companies run it (issue 17): cluster, Sentinel, eviction, restarts, refusals."""
