import Foundation
import UniLIPCore
#if canImport(Glibc)
import Glibc
#endif

/// A `.pth` problem. Every message names the file and, where there is one, the tensor.
public typealias TorchCheckpointError = WeightsFileError

/// A PyTorch checkpoint written by `torch.save` (torch ≥ 1.6 zip format): a ZIP archive of STORED
/// entries `<prefix>/data.pkl` (the pickled object), `<prefix>/data/<key>` (one file per storage),
/// `<prefix>/byteorder` and `<prefix>/version`. The file is memory-mapped; tensor bytes are only
/// read when a tensor is asked for. No Python code is run: the pickle reader accepts only the
/// globals a tensor state dict needs.
///
/// Which dict holds the tensors:
/// - with `key`, the top-level dict's entry `key` (e.g. "state_dict", "model", "ema");
/// - without, the top-level dict if it holds any tensor; otherwise, repeatedly, its only
///   dict-valued entry that (at some depth) holds tensors. Several candidates are an error that
///   lists them, so the caller picks one with `key`.
/// Non-tensor values in the chosen dict (e.g. an epoch counter) are ignored.
public final class TorchCheckpoint: @unchecked Sendable {
    public struct Info: Sendable, Equatable {
        public let name: String
        /// Safetensors-style dtype name: F32, F16, BF16, F64, I64, … or the torch storage class.
        public let dtypeName: String
        public let shape: [Int]
        public let stride: [Int]
        /// Element offset into the storage.
        public let offset: Int
        public let storageKey: String

        public var dtype: DType? { DType(rawValue: dtypeName) }
        public var count: Int { shape.reduce(1, *) }
        public var byteCount: Int { count * ((DType.bitSize(ofSafetensorsName: dtypeName) ?? 0) / 8) }
        public var isContiguous: Bool {
            var expected = 1
            for (n, s) in zip(shape, stride).reversed() where n != 1 {
                if s != expected { return count == 0 }
                expected *= n
            }
            return true
        }
    }

    public let path: String
    /// The top-level key the tensors were found under; nil when the top level is the state dict.
    public let key: String?
    public let entries: [String: Info]
    public let fileSize: Int
    private let base: UnsafeMutableRawPointer
    /// Storage key → byte range in the mapped file.
    private let storages: [String: Range<Int>]

    /// Tensor names in the order they were saved.
    public let names: [String]

    public init(path: String, key: String? = nil) throws {
        self.path = path
        func error(_ reason: String) -> TorchCheckpointError { TorchCheckpointError(path: path, reason) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw error("cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw error("not a regular file") }
        let size = Int(st.st_size)
        guard size >= 22 else { throw error("truncated: \(size) bytes is too short for a ZIP archive") }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw error("cannot memory-map (\(String(cString: strerror(errno))))")
        }
        do {
            let bytes = UnsafeRawBufferPointer(start: map, count: size)
            if bytes[0] == 0x80 || (bytes[0] != 0x50 || bytes[1] != 0x4B) {
                // Legacy torch.save output starts with a pickled magic number, not "PK".
                throw error("not a ZIP archive; only the torch ≥ 1.6 zip format is supported (re-save with torch.save in a recent torch)")
            }
            let zip: [String: Range<Int>]
            do {
                zip = try ZipDirectory.read(bytes)
            } catch let e as ZipDirectory.Failure {
                throw error(e.message)
            }
            guard let pkl = zip.keys.filter({ $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }).min() else {
                throw error("no data.pkl in the archive (not a torch.save checkpoint?)")
            }
            let prefix = String(pkl.dropLast("data.pkl".count))
            if let order = zip[prefix + "byteorder"] {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[order]), as: UTF8.self)
                guard text.trimmingCharacters(in: .whitespacesAndNewlines) == "little" else {
                    throw error("byte order '\(text)' is not supported (only little-endian)")
                }
            }
            let root: PickleValue
            do {
                root = try Unpickler.parse(UnsafeRawBufferPointer(rebasing: bytes[zip[pkl] ?? 0..<0]))
            } catch let e as PickleError {
                throw error("\(pkl): \(e)")
            }
            let (dict, chosen) = try Self.stateDict(root, key: key, path: path)
            var entries: [String: Info] = [:]
            var names: [String] = []
            var storages: [String: Range<Int>] = [:]
            for name in dict.keys {
                guard case let .tensor(t)? = dict[name] else { continue }
                let info = Info(name: name, dtypeName: Self.dtypeName(t.storage.type), shape: t.shape,
                                stride: t.stride, offset: t.offset, storageKey: t.storage.key)
                guard let range = zip[prefix + "data/" + t.storage.key] else {
                    throw TorchCheckpointError(path: path, tensor: name,
                                               "storage file '\(prefix)data/\(t.storage.key)' is missing from the archive")
                }
                try Self.checkExtent(info, storageBytes: range.count, path: path)
                storages[t.storage.key] = range
                entries[name] = info
                names.append(name)
            }
            self.key = chosen
            self.entries = entries
            self.names = names
            self.storages = storages
            self.base = map
            self.fileSize = size
        } catch {
            munmap(map, size)
            throw error
        }
    }

    deinit { munmap(base, fileSize) }

    static func dtypeName(_ storageType: String) -> String {
        switch storageType {
        case "FloatStorage": return "F32"
        case "HalfStorage": return "F16"
        case "BFloat16Storage": return "BF16"
        case "DoubleStorage": return "F64"
        case "LongStorage": return "I64"
        case "IntStorage": return "I32"
        case "ShortStorage": return "I16"
        case "CharStorage": return "I8"
        case "ByteStorage": return "U8"
        case "BoolStorage": return "BOOL"
        default: return storageType
        }
    }

    /// Checks that every element the size/stride/offset address lies inside the storage file.
    private static func checkExtent(_ info: Info, storageBytes: Int, path: String) throws {
        guard info.stride.allSatisfy({ $0 >= 0 }) else {
            throw TorchCheckpointError(path: path, tensor: info.name, "negative stride \(info.stride)")
        }
        var count = 1
        for n in info.shape {
            let (c, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else { throw TorchCheckpointError(path: path, tensor: info.name, "size \(info.shape) overflows") }
            count = c
        }
        guard let bits = DType.bitSize(ofSafetensorsName: info.dtypeName), bits >= 8, count > 0 else { return }
        var last = info.offset
        for (n, s) in zip(info.shape, info.stride) {
            let (m, o1) = (n - 1).multipliedReportingOverflow(by: s)
            let (sum, o2) = last.addingReportingOverflow(m)
            guard !o1, !o2 else { throw TorchCheckpointError(path: path, tensor: info.name, "size/stride overflow") }
            last = sum
        }
        let (end, o) = last.multipliedReportingOverflow(by: bits / 8)
        guard !o, end < storageBytes, end + bits / 8 <= storageBytes else {
            throw TorchCheckpointError(path: path, tensor: info.name,
                "size \(info.shape), stride \(info.stride) and offset \(info.offset) reach past the end of a \(storageBytes)-byte storage '\(info.storageKey)'")
        }
    }

    private static func holdsTensors(_ d: PickleDict, depth: Int = 0) -> Bool {
        guard depth < 8 else { return false }
        return d.keys.contains { k in
            switch d[k] {
            case .tensor?: return true
            case let .dict(inner)?: return holdsTensors(inner, depth: depth + 1)
            default: return false
            }
        }
    }

    private static func stateDict(_ root: PickleValue, key: String?, path: String) throws -> (PickleDict, String?) {
        guard case let .dict(top) = root else {
            throw TorchCheckpointError(path: path, "the saved object is a \(root.kind), not a dict of tensors")
        }
        if let key {
            guard let value = top[key] else {
                throw TorchCheckpointError(path: path, "no key '\(key)' at the top level (keys: \(top.keys.joined(separator: ", ")))")
            }
            guard case let .dict(d) = value else {
                throw TorchCheckpointError(path: path, "top-level key '\(key)' holds a \(value.kind), not a dict of tensors")
            }
            return (d, key)
        }
        var current = top
        var trail: [String] = []
        while !current.keys.contains(where: { if case .tensor? = current[$0] { return true } else { return false } }) {
            let candidates = current.keys.filter { k in
                if case let .dict(d)? = current[k] { return holdsTensors(d) }
                return false
            }
            guard candidates.count == 1, case let .dict(d)? = current[candidates[0]] else {
                let where_ = trail.isEmpty ? "the top level" : "'\(trail.joined(separator: "/"))'"
                throw TorchCheckpointError(path: path, candidates.isEmpty
                    ? "no tensors found (keys at \(where_): \(current.keys.joined(separator: ", ")))"
                    : "several dicts of tensors at \(where_): \(candidates.joined(separator: ", ")); choose one with a key")
            }
            trail.append(candidates[0])
            current = d
        }
        return (current, trail.isEmpty ? nil : trail.joined(separator: "/"))
    }

    /// The entry for `name`, or an error naming the file and the tensor.
    public func info(_ name: String) throws -> Info {
        guard let info = entries[name] else {
            throw TorchCheckpointError(path: path, tensor: name, "no such tensor in the checkpoint")
        }
        return info
    }

    public func shape(of name: String) throws -> [Int] { try info(name).shape }
    public func dtypeName(of name: String) throws -> String { try info(name).dtypeName }

    /// Converts the tensor to Float32 into `destination` (`count` values, row-major), gathering
    /// non-contiguous layouts.
    public func read(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
        let info = try info(name)
        guard let dtype = info.dtype else {
            throw TorchCheckpointError(path: path, tensor: name,
                                       "dtype \(info.dtypeName) cannot be read as floating point (expected F32, F16 or BF16)")
        }
        guard info.count > 0, let range = storages[info.storageKey] else { return }
        let size = dtype.byteSize
        let start = UnsafeRawPointer(base) + range.lowerBound + info.offset * size
        if info.isContiguous {
            dtype.decode(start, into: destination, count: info.count)
            return
        }
        // Gather the stored bytes into row-major order, then convert them in one pass. The
        // outer indices advance like an odometer; the innermost dimension is a strided row.
        let rank = info.shape.count
        let inner = info.shape[rank - 1], innerStride = info.stride[rank - 1]
        let packed = UnsafeMutableRawPointer.allocate(byteCount: info.count * size, alignment: 16)
        defer { packed.deallocate() }
        var index = [Int](repeating: 0, count: rank - 1)
        var out = packed
        for _ in 0..<(info.count / inner) {
            var element = 0
            for d in 0..<(rank - 1) { element += index[d] * info.stride[d] }
            let row = start + element * size
            if innerStride == 1 {
                out.copyMemory(from: row, byteCount: inner * size)
            } else {
                for j in 0..<inner { (out + j * size).copyMemory(from: row + j * innerStride * size, byteCount: size) }
            }
            out += inner * size
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < info.shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        dtype.decode(packed, into: destination, count: info.count)
    }

    /// The tensor converted to Float32 (contiguous).
    public func tensor(named name: String) throws -> Tensor {
        let out = Tensor(uninitialized: try info(name).shape)
        try read(name, into: out.pointer)
        return out
    }

    /// Every tensor, converted to Float32 (fails on a tensor of another dtype).
    public func allTensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in names { out[name] = try tensor(named: name) }
        return out
    }
}

/// The central directory of a ZIP archive: entry name → byte range of its (STORED) data.
enum ZipDirectory {
    struct Failure: Error { let message: String }

    static func read(_ b: UnsafeRawBufferPointer) throws -> [String: Range<Int>] {
        func u(_ at: Int, _ n: Int) throws -> Int {
            guard at >= 0, at <= b.count - n else { throw Failure(message: "truncated ZIP archive (a record at byte \(at) runs past the end)") }
            var v: UInt64 = 0
            for i in (0..<n).reversed() { v = v << 8 | UInt64(b[at + i]) }
            guard v <= UInt64(Int.max) else { throw Failure(message: "ZIP field at byte \(at) is out of range") }
            return Int(v)
        }
        // End of central directory: 22 bytes plus a comment of at most 65535 bytes.
        var eocd = -1
        var i = b.count - 22
        while i >= max(0, b.count - 22 - 65535) {
            if b[i] == 0x50, b[i + 1] == 0x4B, b[i + 2] == 5, b[i + 3] == 6 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw Failure(message: "truncated or corrupt ZIP archive: no end-of-central-directory record") }
        var count = try u(eocd + 10, 2)
        var cdSize = try u(eocd + 12, 4)
        var cdOffset = try u(eocd + 16, 4)
        // ZIP64: a locator right before the record points at the 64-bit end record.
        if eocd >= 20, try u(eocd - 20, 4) == 0x07064B50 {
            let at = try u(eocd - 20 + 8, 8)
            guard try u(at, 4) == 0x06064B50 else { throw Failure(message: "corrupt ZIP64 end-of-central-directory record at byte \(at)") }
            count = try u(at + 32, 8)
            cdSize = try u(at + 40, 8)
            cdOffset = try u(at + 48, 8)
        } else if count == 0xFFFF || cdOffset == 0xFFFF_FFFF {
            throw Failure(message: "ZIP64 archive without a ZIP64 locator")
        }
        guard cdOffset <= b.count, cdSize <= b.count - cdOffset else {
            throw Failure(message: "truncated ZIP archive: the central directory (\(cdSize) bytes at \(cdOffset)) lies past the end of the \(b.count)-byte file")
        }
        var out: [String: Range<Int>] = [:]
        var p = cdOffset
        for n in 0..<count {
            guard try u(p, 4) == 0x02014B50 else {
                throw Failure(message: "corrupt ZIP central directory: entry \(n) at byte \(p) has no header signature")
            }
            let method = try u(p + 10, 2)
            var compressed = try u(p + 20, 4), size = try u(p + 24, 4)
            let nameLength = try u(p + 28, 2), extraLength = try u(p + 30, 2), commentLength = try u(p + 32, 2)
            var local = try u(p + 42, 4)
            guard p + 46 + nameLength <= b.count else { throw Failure(message: "truncated ZIP central directory") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: b[(p + 46)..<(p + 46 + nameLength)]), as: UTF8.self)
            // ZIP64 extra field (id 1): the 64-bit values of whichever fields are saturated, in order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = try u(e, 2), length = try u(e + 2, 2)
                if id == 1 {
                    var f = e + 4
                    if size == 0xFFFF_FFFF { size = try u(f, 8); f += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = try u(f, 8); f += 8 }
                    if local == 0xFFFF_FFFF { local = try u(f, 8); f += 8 }
                }
                e += 4 + length
            }
            guard method == 0 else {
                let kind = method == 8 ? "DEFLATE-compressed" : "compressed (method \(method))"
                throw Failure(message: "entry '\(name)' is \(kind); only uncompressed (STORED) entries, as torch.save writes, are supported")
            }
            guard compressed == size else { throw Failure(message: "entry '\(name)': stored size \(compressed) differs from its size \(size)") }
            guard try u(local, 4) == 0x04034B50 else {
                throw Failure(message: "corrupt ZIP archive: entry '\(name)' has no local header at byte \(local)")
            }
            let start = local + 30 + (try u(local + 26, 2)) + (try u(local + 28, 2))
            guard start <= b.count, size <= b.count - start else {
                throw Failure(message: "truncated ZIP archive: entry '\(name)' (\(size) bytes at \(start)) runs past the end of the \(b.count)-byte file")
            }
            out[name] = start..<(start + size)
            p += 46 + nameLength + extraLength + commentLength
        }
        return out
    }
}
