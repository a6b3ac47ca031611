import UniLIPCore
import XCTest

final class ParallelTests: XCTestCase {
    func testMapKeepsOrderOnAnyThreadCount() {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        for threads in [1, 2, 3] {
            Parallel.setThreads(threads)
            for count in [0, 1, 2, 7, 64] {
                XCTAssertEqual(Parallel.map(count) { "item \($0 * $0)" }, (0..<count).map { "item \($0 * $0)" },
                               "\(threads) threads, \(count) items")
            }
        }
    }
}
