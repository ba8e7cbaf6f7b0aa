"""The runtime every Univence service shares, so a service is only its servicer and its backends."""
