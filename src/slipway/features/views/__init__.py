"""Feature views: features from groups plus transformations, defined once and computed the
same way for training sets (offline) and for serving (online)."""
