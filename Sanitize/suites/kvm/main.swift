// sanitize-kvm-suite: every test of Tests/HVKVMTests (a symlinked directory) as
// one executable, so scripts/sanitize builds only this suite and what it
// depends on in release under AddressSanitizer, not every test target.
// The arguments are swift test's (--filter, --skip, ...); exits non-zero
// when a test fails.
import Testing

await Testing.__swiftPMEntryPoint() as Never
