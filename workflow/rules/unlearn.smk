# Rules of part 'unlearn'.
