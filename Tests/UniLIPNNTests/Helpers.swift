import UniLIPCore
import UniLIPNN
import UniLIPTestSupport
import XCTest

/// Finite differences through a module: the input and every parameter are probed.
func checkModule(_ module: Module, input x: Tensor, file: StaticString = #filePath, line: UInt = #line,
                 _ f: @escaping (Tensor) -> Tensor) {
    let params = module.parameters()
    XCTAssertFalse(params.isEmpty, "module has no parameters", file: file, line: line)
    checkGradients([x] + params, file: file, line: line) { xs in f(xs[0]) }
}
