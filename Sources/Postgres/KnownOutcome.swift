import Logging
import Platform

/// Records an outcome that already happened elsewhere (an album Telegram showed, a task Kie
/// created, a refund the bank made) through a short database outage: a PostgreSQL restart
/// or failover between the call and its record (docs/reliability.md#R13: a known outcome is recorded).
///
/// Dropping the outcome there would cost what the row's lease is meant to prevent: once
/// the lease ran out, the call would be made again (the album shown twice, a second Kie task
/// paid for, a Cancel repeated), although the process that knows the answer is alive. So the
/// write is tried again every `retryEvery` seconds while the database is unreachable
/// (`PostgresError.isUnavailable`), until `heldUntil`: the end of the row's lease, after which
/// another worker may act on the row (the write's compare-and-set on the lease token then
/// refuses, as it refuses any write the first try did commit when only its COMMIT's answer
/// was lost). Any other error is thrown at once; unavailability at `heldUntil` too. Only a
/// killed process still leaves its call unrecorded (the crash-point matrix).
///
/// `heldUntil` is on the holder's monotonic `clock` (the domain passes its own clock,
/// `KnownOutcome(clock: deps.clock)`): take it from that clock before the claim or renewal
/// that set the lease, so it never ends later than the database's.
///
/// ```swift
/// let outcome = KnownOutcome()            // System.monotonic and System.sleep
/// let heldUntil = outcome.clock() + Double(leaseSeconds)
/// guard try renewLease(db, task) else { return }
/// let id = try kie.createTask(request)
/// try outcome.record(heldUntil: heldUntil, what: "task \(task.id) created as \(id)", log: log) {
///     try recordSubmitted(db, task, kieTaskID: id)
/// }
/// ```
public struct KnownOutcome {
    /// Seconds between tries while the database is unreachable.
    public var retryEvery = KnownOutcome.retryEveryDefault
    public var clock: () -> Double = System.monotonic
    public var sleep: (Double) -> Void = System.sleep

    public static let retryEveryDefault = 0.5

    public init() {}

    /// `write` once, or again while the database is unreachable, until `heldUntil`.
    public func record<T>(heldUntil: Double, what: @autoclosure () -> String, log: Logger, _ write: () throws -> T) throws -> T {
        var waiting = false
        while true {
            do {
                let value = try write()
                if waiting { log.info("the database is back: the outcome is recorded", metadata: ["outcome": "\(what())"]) }
                return value
            } catch let error as PostgresError where error.isUnavailable && clock() + retryEvery < heldUntil {
                if !waiting {
                    waiting = true
                    log.warning("the database is unreachable: the outcome is held and recorded once it is back",
                                metadata: ["outcome": "\(what())", "error": "\(error)",
                                           "held_for_seconds": "\(Int(heldUntil - clock()))"])
                }
                sleep(retryEvery)
            }
        }
    }
}
