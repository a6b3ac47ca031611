import Foundation

/// Reuses large tensor buffers. A training step allocates the same large temporaries every
/// time; handing them back to the system and faulting fresh zeroed pages in again costs more
/// than the arithmetic of cheap ops. Buffers of at least `minPooledBytes` are kept, per exact
/// size, up to `maxCachedBytes` in all (`UNILIP_POOL_BYTES` overrides; 0 disables the pool).
enum StoragePool {
    static let minPooledBytes = 1 << 16
    static let maxCachedBytes: Int = {
        if let text = ProcessInfo.processInfo.environment["UNILIP_POOL_BYTES"], let n = Int(text) { return Swift.max(0, n) }
        return 1 << 30
    }()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var free: [Int: [UnsafeMutableRawPointer]] = [:]
    nonisolated(unsafe) private static var cachedBytes = 0

    static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        if byteCount >= minPooledBytes {
            lock.lock()
            if let p = free[byteCount]?.popLast() {
                cachedBytes -= byteCount
                lock.unlock()
                return p
            }
            lock.unlock()
        }
        return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    }

    static func release(_ p: UnsafeMutableRawPointer, byteCount: Int) {
        if byteCount >= minPooledBytes {
            lock.lock()
            if cachedBytes + byteCount <= maxCachedBytes {
                free[byteCount, default: []].append(p)
                cachedBytes += byteCount
                lock.unlock()
                return
            }
            lock.unlock()
        }
        p.deallocate()
    }

    /// Returns every cached buffer to the system.
    static func drain() {
        lock.lock()
        let all = free.values.flatMap { $0 }
        free = [:]
        cachedBytes = 0
        lock.unlock()
        for p in all { p.deallocate() }
    }
}
