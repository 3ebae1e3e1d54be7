# Rules of part 'lrs'.
