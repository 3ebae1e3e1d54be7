# Rules of part 'data'.
