// The module's umbrella header: every header of the module, listed, so a
// header added later changes this file and rebuilds what imports the
// module (with only an umbrella directory, a build directory's module
// cache did not notice a new header and the build failed to find it).
#ifndef HVKIT_CCOREINTRINSICS_H
#define HVKIT_CCOREINTRINSICS_H

#include "branchless_search.h"
#include "prefetch.h"
#include "streaming_zero.h"
#include "tsan_annotations.h"
#include "word_atomics.h"

#endif
