// `hvkit-serve`: HVCore behind the target protocol (docs/target-protocol.md),
// the same server as `hvkit serve` in a small static executable. A hunt
// starts one server per case, so the server's start-up is the hunt's pace:
// this one maps no shared libraries and links no Foundation.
import HVTarget

TargetServer(bug: nil).run()
