# Rules of part 'dp'.
