import Logging
import Postgres
import JSON
import PinGlassConfig
import Platform

/// The cron duty behind `pinglass deliver` (docs/architecture.md#flow-deliver): sends the due
/// `telegram_deliveries` rows — a job's albums and single photos, its final message, and
/// operator alerts — and records what Telegram answered.
///
/// Each round of a pass:
/// 1. takes slots from the global budget shared by every deliver process (`RateBudget`
///    named `telegram.send`, a sliding window of `DelivererDefaults.budgetWindowSeconds`;
///    an album of N photos takes N);
/// 2. claims due rows that fit those slots, at most one per chat whose pace allows it, in
///    one statement (`Deliverer+Claim.swift`: `FOR UPDATE SKIP LOCKED`, a lease, the chat
///    held in `telegram_chat_pacing` until the outcome is known);
/// 3. sends them one after another (`Deliverer+Send.swift`): the photos read from storage
///    first, then the intent right before each Telegram call (lease renewed by
///    compare-and-set, a lost one stops the row; budget slots stamped), the call with no
///    transaction open, then the outcome with a compare-and-set on the lease token, its
///    business write and the chat's next pace in one short transaction
///    (`Deliverer+Outcome.swift`). A 429 for a chat that kept its pace pauses the global
///    budget for its `retry_after`: the round's other rows go back, and no deliver process
///    sends until it ends.
///
/// Rows that are not due yet (a chat's pace, a backoff, a 429's `retry_after`) are left for a
/// later pass: a pass never sleeps waiting for one. `secondsUntilDue` tells the command's
/// loop when the next one comes, and `pg_notify('deliver')` (a new album, a finished job, an
/// alert) wakes it at once.
///
/// Residual risk (docs/reliability.md#R9): Telegram has no idempotency key. A process that dies
/// after Telegram accepted a send and before the outcome is recorded (crash point
/// `deliver.after-send`) leaves the row `sending`; when its lease runs out it is claimed and
/// sent again, so at most that one batch is shown twice. Nothing else is ever resent: a row
/// recorded `sent` is never claimed again.
///
/// ```swift
/// let deliverer = try Deliverer(deps: deps, config: Deliverer.Config())
/// let report = try deliverer.runOnce(now: deps.clock(), deadline: deps.clock() + 55)
/// ```
public struct Deliverer: Duty {
    public static let name = DutyName.deliver

    public struct Config: DutyConfig, Equatable {
        /// Messages claimed per round at most (an album of N counts N), and never more than
        /// the global budget grants. At least an album's worth.
        public var batchSize = DelivererDefaults.batchSize
        /// Seconds a claimed row stays ours; renewed right before each Telegram call. A row
        /// whose lease ran out (its process died) is claimed again: the outcome of its send
        /// is unknown. At least `DelivererDefaults.minimumLeaseSeconds`, so that no call can
        /// outlive it (another deliverer would send the same batch meanwhile).
        public var leaseSeconds = DelivererDefaults.leaseSeconds
        /// Seconds between messages to one chat (Telegram: about one per second per chat); an
        /// album of N photos is N messages, so the chat waits N times this after it. A group
        /// (the admin chat) waits at least `DelivererDefaults.groupIntervalSeconds`.
        public var chatIntervalSeconds = DelivererDefaults.chatIntervalSeconds
        /// Messages per second to all chats together, for every deliver process on every
        /// machine together (Telegram allows about 30). At least an album's worth.
        public var globalPerSecond = DelivererDefaults.globalPerSecond
        /// How long the photo links handed to Telegram stay valid (it fetches them at once,
        /// but a retried send reuses nothing: each attempt signs anew).
        public var mediaLinkSeconds = DelivererDefaults.mediaLinkSeconds

        public init() {}

        public static var settings: [DutySetting<Self>] {
            [
                .count("batch-size", \.batchSize, in: DeliveryBatches.albumSize...1000, "Messages claimed per round at most (an album of N counts N)."),
                .seconds("chat-interval", \.chatIntervalSeconds, in: 0.05...60, "Time between messages to one chat."),
                .count("global-rate", \.globalPerSecond, in: DeliveryBatches.albumSize...1000,
                       "Messages per second to all chats together, for every deliver process together."),
                .seconds("lease", \.leaseSeconds, in: DelivererDefaults.minimumLeaseSeconds...3600, """
                    How long a claimed row stays this process's, renewed right before each Telegram call (at least \
                    \(DelivererDefaults.minimumLeaseSeconds)s: twice the \(Int(DelivererDefaults.telegramTimeout))s a call may take, plus a \
                    margin, so no call outlives it).
                    """),
                .seconds("media-link-ttl", \.mediaLinkSeconds, in: 600...(7 * 86_400), "How long the photo links given to Telegram stay valid."),
            ]
        }
    }

    public struct Report: DutyReport, Equatable {
        /// Rows sent (and recorded).
        public var sent = 0
        /// Telegram messages those rows made (an album of N photos is N).
        public var messages = 0
        /// Rows Telegram answered 429: they wait its `retry_after`.
        public var rateLimited = 0
        /// Rows that failed for a transient reason and wait their backoff.
        public var retried = 0
        /// Rows failed for good (a refusal, a blocked chat and its other waiting rows, or
        /// `give_up_at` reached).
        public var failed = 0
        /// Rows claimed again after their lease ran out (a deliverer died mid-send).
        public var reclaimed = 0
        /// Claimed rows that were not ours any more when their turn came.
        public var leaseLost = 0
        /// Claimed rows put back unsent (their budget slot aged, or the pass ended).
        public var givenBack = 0
        /// Rounds that found the global budget spent.
        public var budgetWaits = 0

        public init() {}

        public var json: JSON {
            ["sent": .int(sent), "messages": .int(messages), "rateLimited": .int(rateLimited), "retried": .int(retried),
             "failed": .int(failed), "reclaimed": .int(reclaimed), "leaseLost": .int(leaseLost), "givenBack": .int(givenBack),
             "budgetWaits": .int(budgetWaits)]
        }
    }

    public let config: Config
    let deps: Dependencies
    let telegram: any TelegramAPI
    /// Telegram's global limit, shared by every deliver process (a sliding window a little
    /// longer than Telegram's second: `DelivererDefaults.budgetWindowSeconds`).
    let budget: RateBudget
    let log = Logger(label: "deliver")

    public init(deps: Dependencies, config: Config = Config()) throws {
        try config.validate()
        guard let telegram = deps.telegram else { throw ConfigError.missing("TELEGRAM_BOT_TOKEN") }
        self.deps = deps
        self.config = config
        self.telegram = telegram
        budget = RateBudget(name: DelivererDefaults.budgetName, limit: config.globalPerSecond,
                            window: DelivererDefaults.budgetWindowSeconds)
    }

    /// What lives for one pass: once Telegram refused to fetch a photo link, the rest of the
    /// pass uploads the bytes instead of trying links again; and how long a row took, so a
    /// round claims no more rows than it can send while its budget slots are fresh.
    struct Pass {
        var preferUpload = false
        var secondsPerRow: Double?

        /// Rows one round may claim: as many as fit in most of the budget's window.
        func rowsPerRound(window: Double) -> Int {
            guard let t = secondsPerRow, t > 0 else { return 1000 }
            return min(1000, max(1, Int(window * 0.8 / t)))
        }
    }

    public func runOnce(now: Double, deadline: Double) throws -> Report {
        var report = Report()
        var pass = Pass()
        let db = try deps.db()
        while deps.clock() < deadline {
            let reservedAt = deps.clock.monotonic()
            let grant = try budget.reserve(db, want: config.batchSize)
            guard grant.granted > 0 else {
                report.budgetWaits += 1
                break
            }
            let claimed = try claim(db, budget: grant.granted, rows: pass.rowsPerRound(window: budget.window))
            var slots = grant.slots[...]
            let used = claimed.reduce(0) { $0 + $1.cost }
            try budget.release(db, slots.dropFirst(used))
            slots = slots.prefix(used)
            guard !claimed.isEmpty else { break }
            report.reclaimed += claimed.filter(\.reclaimed).count
            for (i, row) in claimed.enumerated() {
                let rowSlots = slots.prefix(row.cost)
                slots = slots.dropFirst(row.cost)
                // A slot counts from its reservation until it is stamped at the send; one
                // stamped a window later would leave a gap other processes could fill.
                guard deps.clock() < deadline, deps.clock.monotonic() - reservedAt < budget.window * 0.8 else {
                    report.givenBack += try giveBack(db, Array(claimed[i...]))
                    try budget.release(db, Array(rowSlots) + Array(slots))
                    break
                }
                let started = deps.clock.monotonic()
                defer { pass.secondsPerRow = deps.clock.monotonic() - started }
                let turn = try deliver(row, slots: rowSlots, db, &pass, &report)
                guard turn == .next else {
                    // The bot token was refused, or Telegram's flood control holds every
                    // chat: the round's other rows go back unsent.
                    report.givenBack += try giveBack(db, Array(claimed[(i + 1)...]))
                    try budget.release(db, slots)
                    if turn == .unauthorized { throw DeliverError.unauthorized }
                    return report
                }
            }
        }
        return report
    }
}

public enum DeliverError: Error, CustomStringConvertible {
    case unauthorized
    public var description: String {
        "Telegram refused the bot token (401): check TELEGRAM_BOT_TOKEN; deliveries wait, nothing was lost"
    }
}

/// The named defaults of `Deliverer.Config` (each documented on its field).
public enum DelivererDefaults {
    public static let batchSize = 25
    public static let leaseSeconds = 120
    /// The whole-call limit of the live Telegram client (`TelegramClient.defaultTimeout`): the
    /// longest one call may take (an album of ten uploads must fit in it).
    public static let telegramTimeout = 30.0
    /// The shortest lease: longer than the worst case of one Telegram call, twice over plus
    /// a margin (the renew before the call and the record after it are database round
    /// trips; a call may also be slow to even start), as the refund duty's.
    public static let minimumLeaseSeconds = Int(2 * telegramTimeout) + 10
    public static let chatIntervalSeconds = 1.0
    /// The least interval between messages to a group (a negative chat id, like the admin
    /// chat): Telegram allows about 20 messages a minute in a group.
    public static let groupIntervalSeconds = 3.0
    public static let globalPerSecond = 25
    public static let mediaLinkSeconds = MediaLinks.apiTTL
    /// The global budget's window. Telegram counts messages as they arrive, we count them when
    /// they leave (a slot is stamped right before its call), and one call may take longer to
    /// arrive than the next (a 10-photo upload, a loaded machine): with a window of exactly
    /// one second the calls of two windows can arrive inside one second (28 for a limit of
    /// 25 was measured). The extra 0.1 s absorbs that much difference in transit, for about
    /// 10 % of the throughput.
    public static let budgetWindowSeconds = 1.1
    /// The shared budget's name in `rate_events`.
    public static let budgetName = "telegram.send"
    /// Telegram fetches photos by URL up to 5 MB (docs/providers.md#telegram-files); larger ones are
    /// uploaded (up to 10 MB).
    public static let maxURLPhotoBytes = 5_000_000
}
