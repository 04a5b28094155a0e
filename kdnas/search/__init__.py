"""Architecture search: the space, strategies behind one ask/tell interface, rewards and the trial loop."""
