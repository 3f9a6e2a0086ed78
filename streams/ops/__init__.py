"""Operations: the local stack, replay, delivery verification and the analysts' catalog."""
