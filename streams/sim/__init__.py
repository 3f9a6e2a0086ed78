"""The simulated province and the demo that feeds it through the whole path."""
