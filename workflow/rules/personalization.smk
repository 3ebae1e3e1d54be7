# Rules of part 'personalization'.
