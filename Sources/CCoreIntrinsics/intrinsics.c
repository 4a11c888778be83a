// Header-only: see include/.
