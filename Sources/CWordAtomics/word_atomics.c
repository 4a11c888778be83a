// Header-only: see include/word_atomics.h.
