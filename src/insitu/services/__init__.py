"""Scale-out services: a queue (bluesky-queueserver), a shared catalog (tiled), 0MQ analysis."""
