import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A safetensors file error. Every message names the file and, where there is one, the tensor.
public struct SafetensorsError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let tensor: String?
    public let reason: String

    public init(path: String, tensor: String? = nil, _ reason: String) {
        self.path = path
        self.tensor = tensor
        self.reason = reason
    }

    public var description: String {
        if let tensor { return "\(path): tensor '\(tensor)': \(reason)" }
        return "\(path): \(reason)"
    }
}

/// One tensor's entry in a safetensors header.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    /// The dtype as written in the file (F32, F16, BF16, I64, …).
    public let dtypeName: String
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let begin: Int
    public let end: Int

    /// The dtype when it is one this project computes with.
    public var dtype: DType? { DType(rawValue: dtypeName) }
    public var count: Int { shape.reduce(1, *) }
}

/// A read-only, memory-mapped safetensors file. Tensors are converted to Float32 on access.
public final class SafetensorsFile: @unchecked Sendable {
    /// Largest header accepted; real headers are kilobytes to a few megabytes.
    public static let maxHeaderBytes = 100 << 20

    public let path: String
    public let entries: [String: SafetensorsEntry]
    public let metadata: [String: String]
    private let base: UnsafeMutableRawPointer?
    private let mappedBytes: Int
    private let dataOffset: Int

    /// Names in file order (by data offset).
    public var names: [String] { entries.values.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }.map(\.name) }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw SafetensorsError(path: path, "cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SafetensorsError(path: path, "cannot stat") }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw SafetensorsError(path: path, "truncated: \(size) bytes, shorter than the 8-byte header length")
        }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw SafetensorsError(path: path, "cannot memory-map (\(String(cString: strerror(errno))))")
        }
        do {
            let headerLength = map.loadUnaligned(as: UInt64.self)
            guard headerLength <= UInt64(Self.maxHeaderBytes) else {
                throw SafetensorsError(path: path, "header length \(headerLength) exceeds the \(Self.maxHeaderBytes)-byte limit")
            }
            let n = Int(headerLength)
            guard 8 + n <= size else {
                throw SafetensorsError(path: path, "truncated: header says \(n) bytes but the file has \(size - 8) after the length")
            }
            let headerData = Data(bytes: map + 8, count: n)
            let (entries, metadata) = try Self.parseHeader(headerData, path: path, dataBytes: size - 8 - n)
            self.entries = entries
            self.metadata = metadata
            self.base = map
            self.mappedBytes = size
            self.dataOffset = 8 + n
        } catch {
            munmap(map, size)
            throw error
        }
    }

    deinit { if let base { munmap(base, mappedBytes) } }

    static func parseHeader(_ data: Data, path: String, dataBytes: Int) throws
        -> ([String: SafetensorsEntry], [String: String]) {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw SafetensorsError(path: path, "header is not valid JSON")
        }
        guard let object = json as? [String: Any] else {
            throw SafetensorsError(path: path, "header is not a JSON object")
        }
        var entries: [String: SafetensorsEntry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw SafetensorsError(path: path, "__metadata__ is not an object")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw SafetensorsError(path: path, "__metadata__ value for '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw SafetensorsError(path: path, tensor: name, "entry is not an object")
            }
            guard let dtype = info["dtype"] as? String else {
                throw SafetensorsError(path: path, tensor: name, "missing dtype")
            }
            guard let rawShape = info["shape"] as? [Any],
                  let shape = Self.integers(rawShape), shape.allSatisfy({ $0 >= 0 }) else {
                throw SafetensorsError(path: path, tensor: name, "shape is not a list of non-negative integers")
            }
            guard let rawOffsets = info["data_offsets"] as? [Any],
                  let offsets = Self.integers(rawOffsets), offsets.count == 2 else {
                throw SafetensorsError(path: path, tensor: name, "data_offsets is not a pair of integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end else {
                throw SafetensorsError(path: path, tensor: name, "data_offsets [\(begin), \(end)] are out of order")
            }
            guard end <= dataBytes else {
                throw SafetensorsError(path: path, tensor: name,
                                       "data_offsets end \(end) is past the end of the data (\(dataBytes) bytes); the file may be truncated")
            }
            var count = 1
            for d in shape {
                let (c, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw SafetensorsError(path: path, tensor: name, "shape \(shape) overflows")
                }
                count = c
            }
            if let known = DType(rawValue: dtype) {
                let (bytes, overflow) = count.multipliedReportingOverflow(by: known.byteSize)
                guard !overflow, bytes == end - begin else {
                    throw SafetensorsError(path: path, tensor: name,
                                           "\(dtype) \(shape) needs \(count * known.byteSize) bytes but data_offsets span \(end - begin)")
                }
            }
            entries[name] = SafetensorsEntry(name: name, dtypeName: dtype, shape: shape, begin: begin, end: end)
        }
        return (entries, metadata)
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            guard let n = v as? Int else { return nil }
            out.append(n)
        }
        return out
    }

    /// The raw bytes of a tensor, still in its stored dtype.
    public func rawBytes(_ name: String) throws -> (SafetensorsEntry, UnsafeRawBufferPointer) {
        guard let entry = entries[name] else {
            throw SafetensorsError(path: path, tensor: name, "no such tensor in the file")
        }
        let start = UnsafeRawPointer(base!) + dataOffset + entry.begin
        return (entry, UnsafeRawBufferPointer(start: start, count: entry.end - entry.begin))
    }

    /// The tensor converted to Float32.
    public func tensor(_ name: String) throws -> Tensor {
        let (entry, bytes) = try rawBytes(name)
        guard let dtype = entry.dtype else {
            throw SafetensorsError(path: path, tensor: name,
                                   "dtype \(entry.dtypeName) is not supported (expected F32, F16 or BF16)")
        }
        let out = Tensor(uninitialized: entry.shape)
        if entry.count > 0, let src = bytes.baseAddress {
            dtype.decode(src, into: out.pointer, count: entry.count)
        }
        return out
    }

    /// Every tensor, converted to Float32.
    public func allTensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in entries.keys { out[name] = try tensor(name) }
        return out
    }
}

/// Writes safetensors files atomically: a temporary file in the same folder, synced, then renamed.
public enum SafetensorsWriter {
    public static func write(_ tensors: [String: Tensor], to path: String, dtype: DType = .f32,
                             metadata: [String: String] = [:]) throws {
        let data = try serialize(tensors, dtype: dtype, metadata: metadata, path: path)
        try AtomicFile.write(data, to: path)
    }

    /// The complete file contents. Tensors are laid out in name order; the header is padded with
    /// spaces to a multiple of 8 bytes so data stays aligned.
    public static func serialize(_ tensors: [String: Tensor], dtype: DType = .f32,
                                 metadata: [String: String] = [:], path: String = "<memory>") throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            guard name != "__metadata__" else {
                throw SafetensorsError(path: path, tensor: name, "reserved tensor name")
            }
            let t = tensors[name]!
            let bytes = t.count * dtype.byteSize
            header[name] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            let t = tensors[name]!
            out.append(contentsOf: dtype.encode(t.pointer, count: t.count))
        }
        return out
    }
}

/// Atomic file replacement: write a temporary sibling, fsync it, rename over the target.
/// A failure (a full disk, say) leaves any existing file untouched and removes the temporary.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw SafetensorsError(path: path, "cannot create temporary file (\(String(cString: strerror(errno))))")
        }
        var failure: String? = nil
        data.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "write failed (\(String(cString: strerror(errno))))"
                    return
                }
                written += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = "fsync failed (\(String(cString: strerror(errno))))" }
        close(fd)
        if failure == nil && rename(tmp, path) != 0 {
            failure = "rename failed (\(String(cString: strerror(errno))))"
        }
        if let failure {
            unlink(tmp)
            throw SafetensorsError(path: path, failure)
        }
    }
}
