import Foundation

/// What the server accepts; every limit is answered with a 4xx JSON error, never a crash.
public struct ServerLimits: Sendable, Equatable {
    /// Largest request body, in bytes (413 above).
    public var maxBodyBytes = 8 << 20
    /// Longest side of an uploaded image, in pixels (422 above).
    public var maxImageSide = 1024
    /// Longest question, instruction or prompt, in characters (400 above, and when empty).
    public var maxTextLength = 500
    /// Denoising steps a job may ask for.
    public var steps: ClosedRange<Int> = 1...50
    /// Classifier-free guidance scales a job may ask for.
    public var guidance: ClosedRange<Float> = 0...20
    /// Jobs waiting behind the running one; a job posted when this many wait gets 429.
    public var maxQueue = 8
    /// Jobs kept in memory, finished ones included: the oldest finished ones are dropped first.
    public var maxJobs = 64
    /// Seconds a refused client is told to wait (Retry-After).
    public var retryAfterSeconds = 5

    public init() {}

    /// A message naming the first inconsistent setting, or nil.
    public func problem() -> String? {
        if maxBodyBytes < 1024 { return "the body limit must be at least 1024 bytes (got \(maxBodyBytes))" }
        if maxImageSide < 16 { return "the image side limit must be at least 16 pixels (got \(maxImageSide))" }
        if maxTextLength < 1 { return "the text length limit must be at least 1 (got \(maxTextLength))" }
        if maxQueue < 0 { return "the queue length must be at least 0 (got \(maxQueue))" }
        if maxJobs < maxQueue + 1 {
            return "the job limit (\(maxJobs)) must exceed the queue length (\(maxQueue)): it counts the running and the waiting jobs"
        }
        return nil
    }
}

/// Where the server listens and which model folders it loads.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 takes any free port; the bound one is reported once the server runs.
    public var port = 8080
    public var limits = ServerLimits()

    public init(host: String = "127.0.0.1", port: Int = 8080, limits: ServerLimits = ServerLimits()) {
        self.host = host
        self.port = port
        self.limits = limits
    }
}

/// The model folders a `ModelBackend` loads.
public struct ModelFolders: Sendable, Equatable {
    /// InternVL folder answering questions.
    public var understanding: String
    /// UniLIP autoencoder folder reconstructing images.
    public var autoencoder: String
    /// Generation folder generating and editing images.
    public var generation: String

    public init(understanding: String, autoencoder: String, generation: String) {
        self.understanding = understanding
        self.autoencoder = autoencoder
        self.generation = generation
    }

    /// The shipped layout: ROOT/internvl-tiny, ROOT/unilip-tiny, ROOT/unilip-gen-tiny.
    public init(root: String) {
        func path(_ name: String) -> String { (root as NSString).appendingPathComponent(name) }
        self.init(understanding: path("internvl-tiny"), autoencoder: path("unilip-tiny"), generation: path("unilip-gen-tiny"))
    }
}
