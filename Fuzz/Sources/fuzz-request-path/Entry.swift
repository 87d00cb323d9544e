import FuzzDriver

// The renamed main SwiftPM links in; FuzzDriver says why.
@_cdecl("fuzz_request_path_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data, size) }
}
