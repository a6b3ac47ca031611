import Foundation

/// Reuses large tensor buffers. A training step allocates the same large temporaries every
/// time; handing them back to the system and faulting fresh zeroed pages in again costs more
/// than the arithmetic of cheap ops. Buffers of at least `minPooledBytes` are kept per size
/// class, up to `maxCachedBytes` in all (`UNILIP_POOL_BYTES` overrides; 0 disables the pool).
enum StoragePool {
    static let minPooledBytes = 1 << 16
    /// A quarter of physical memory, at least 1 GiB: a training step of the tiny models peaks at
    /// 1.5–1.7 GB of tensors, and with a 1 GiB pool what did not fit was unmapped at the end of
    /// every step and faulted in again in the next (87,000 page faults a second in fine-tuning).
    static let maxCachedBytes: Int = {
        if let text = ProcessInfo.processInfo.environment["UNILIP_POOL_BYTES"], let n = Int(text) { return Swift.max(0, n) }
        return Swift.max(1 << 30, Int(clamping: ProcessInfo.processInfo.physicalMemory / 4))
    }()

    private static let lock = NSLock()
    nonisolated(unsafe) private static var free: [Int: [UnsafeMutableRawPointer]] = [:]
    nonisolated(unsafe) private static var cachedBytes = 0

    /// Bytes reserved for a request of `byteCount`: from `minPooledBytes` up, sizes round up to
    /// eight classes per power of two (at most 12.5% more), so buffers whose size moves a little
    /// from step to step (packed token counts, caption lengths) are reused rather than faulted in
    /// afresh every step.
    static func sizeClass(_ byteCount: Int) -> Int {
        guard byteCount >= minPooledBytes else { return byteCount }
        let bits = Int.bitWidth - (byteCount - 1).leadingZeroBitCount
        let step = 1 << (bits - 4)
        return (byteCount + step - 1) / step * step
    }

    static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = sizeClass(byteCount)
        if size >= minPooledBytes {
            lock.lock()
            if let p = free[size]?.popLast() {
                cachedBytes -= size
                lock.unlock()
                return p
            }
            lock.unlock()
        }
        return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
    }

    /// Takes back a buffer from `allocate` (the same `byteCount`).
    static func release(_ p: UnsafeMutableRawPointer, byteCount: Int) {
        let size = sizeClass(byteCount)
        if size >= minPooledBytes {
            lock.lock()
            if cachedBytes + size <= maxCachedBytes {
                free[size, default: []].append(p)
                cachedBytes += size
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
