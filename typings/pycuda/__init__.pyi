VERSION: tuple[int, int, int]
