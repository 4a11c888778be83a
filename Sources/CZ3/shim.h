// The Z3 C API (Debian libz3-dev), for the SMT wrapper.
#include <z3.h>
