import Foundation
import UniLIPCore
import UniLIPIO

public enum JobState: String, Codable, Sendable {
    case queued, running, done, failed
}

/// A job as the API reports it.
public struct JobSnapshot: Sendable {
    public var id: String
    public var task: JobTask
    public var state: JobState
    public var progress: Double
    public var message: String
    public var output: JobOutput?
    public var hasImage: Bool
    public var error: String?
    /// Jobs ahead of this one while it waits.
    public var ahead: Int?
    public var seconds: Double?
}

/// Counters for /api/health and the load test.
public struct QueueStats: Sendable {
    public var running: Int
    public var queued: Int
    public var kept: Int
    public var completed: Int
    public var failed: Int
    public var refused: Int
}

/// A bounded FIFO of jobs run one at a time on a dedicated thread, never on the server's event
/// loops: the models are CPU-bound and synchronous, and one model must not be called from two
/// threads at once.
public final class JobQueue: @unchecked Sendable {
    final class Job {
        let id: String
        let request: JobRequest
        var state = JobState.queued
        var progress = 0.0
        var message = "waiting"
        var output: JobOutput?
        var png: Data?
        var error: String?
        var started: Date?
        var finished: Date?

        init(id: String, request: JobRequest) {
            self.id = id
            self.request = request
        }
    }

    public enum Submission: Sendable {
        case accepted(JobSnapshot)
        /// The queue holds its limit of waiting jobs.
        case full(waiting: Int)
    }

    let backend: any JobBackend
    let limits: ServerLimits
    private let condition = NSCondition()
    private var jobs: [String: Job] = [:]
    /// Ids in submission order, for eviction.
    private var order: [String] = []
    private var waiting: [Job] = []
    private var running: Job?
    private var completed = 0, failed = 0, refused = 0
    private var worker: Thread?

    public init(backend: any JobBackend, limits: ServerLimits) {
        self.backend = backend
        self.limits = limits
    }

    /// Starts the worker thread (once).
    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard worker == nil else { return }
        let thread = Thread { [weak self] in self?.work() }
        thread.name = "unilip-jobs"
        // Deep model code on a thread of its own: give it the main thread's stack size.
        thread.stackSize = 16 << 20
        worker = thread
        thread.start()
    }

    public func submit(_ request: JobRequest) -> Submission {
        condition.lock()
        defer { condition.unlock() }
        guard waiting.count < limits.maxQueue || (running == nil && waiting.isEmpty) else {
            refused += 1
            return .full(waiting: waiting.count)
        }
        evictFinished(toFit: 1)
        let job = Job(id: UUID().uuidString.lowercased(), request: request)
        jobs[job.id] = job
        order.append(job.id)
        waiting.append(job)
        condition.signal()
        return .accepted(snapshot(job))
    }

    public func snapshot(id: String) -> JobSnapshot? {
        condition.lock()
        defer { condition.unlock() }
        return jobs[id].map(snapshot)
    }

    /// The output image as PNG, when the job is done and made one.
    public func png(id: String) -> Data? {
        condition.lock()
        defer { condition.unlock() }
        return jobs[id]?.png
    }

    public var stats: QueueStats {
        condition.lock()
        defer { condition.unlock() }
        return QueueStats(running: running == nil ? 0 : 1, queued: waiting.count, kept: jobs.count,
                          completed: completed, failed: failed, refused: refused)
    }

    /// Drops the oldest finished jobs until `count` more fit under `maxJobs`.
    private func evictFinished(toFit count: Int) {
        var i = 0
        while jobs.count + count > limits.maxJobs && i < order.count {
            let id = order[i]
            if let job = jobs[id], job.state == .done || job.state == .failed {
                jobs[id] = nil
                order.remove(at: i)
            } else {
                i += 1
            }
        }
    }

    private func snapshot(_ job: Job) -> JobSnapshot {
        var ahead: Int?
        if job.state == .queued, let position = waiting.firstIndex(where: { $0 === job }) {
            ahead = position + (running == nil ? 0 : 1)
        }
        let end = job.finished ?? Date()
        return JobSnapshot(id: job.id, task: job.request.task, state: job.state, progress: job.progress,
                           message: ahead.map { $0 == 0 ? "waiting" : "waiting (\($0) ahead)" } ?? job.message,
                           output: job.output, hasImage: job.png != nil, error: job.error, ahead: ahead,
                           seconds: job.started.map { end.timeIntervalSince($0) })
    }

    private func work() {
        while true {
            condition.lock()
            while waiting.isEmpty { condition.wait() }
            let job = waiting.removeFirst()
            running = job
            job.state = .running
            job.started = Date()
            job.message = "starting"
            let request = job.request
            condition.unlock()

            var output: JobOutput?
            var png: Data?
            var failure: String?
            do {
                let result = try withNoGrad {
                    try backend.run(request) { [weak self] fraction, message in
                        self?.update(job, progress: fraction, message: message)
                    }
                }
                png = try result.image.map { try $0.pngData() }
                output = result
                output?.image = nil
            } catch {
                failure = "\(error)"
            }

            condition.lock()
            running = nil
            job.finished = Date()
            if let failure {
                job.state = .failed
                job.error = failure
                job.message = "failed"
                failed += 1
            } else {
                job.state = .done
                job.progress = 1
                job.output = output
                job.png = png
                job.message = "done"
                completed += 1
            }
            condition.unlock()
        }
    }

    private func update(_ job: Job, progress: Double, message: String) {
        condition.lock()
        defer { condition.unlock() }
        job.progress = min(max(progress, 0), 1)
        job.message = message
    }
}
