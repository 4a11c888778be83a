// sanitize-tests: the core's concurrency tests (Tests/HVCoreTests/
// ConcurrencyTests.swift, through a symlink) as their own executable, so
// scripts/sanitize can build just them and HVCore in release under
// ThreadSanitizer instead of every test target. Swift Testing finds the
// @Test functions linked into this binary; the arguments are swift test's
// (--filter, --skip, ...). Exits non-zero when a test fails.
import Testing

await Testing.__swiftPMEntryPoint() as Never
