/// How a job ends and how much of its payment goes back when photos are missing
/// (docs/reliability.md#R16). The customer never both keeps a photo and gets its
/// price back:
/// - every photo → `completed`, nothing back;
/// - at least `partialThresholdPercent` of the photos → `partial`: every photo made is
///   delivered and the missing share goes back, `amount × missing / total`;
/// - fewer → `failed`: only the photos already released while the job ran (its early
///   albums) are delivered and paid for; the others are withheld (never sent, never shown)
///   and their share goes back with the missing one, `amount × (total − released) / total`:
///   everything when nothing went out.
/// Kopecks are rounded down: the customer never gets more than that share.
///
/// ```swift
/// RefundRule.standard.refund(amount: Money(kopecks: 49_900), photos: 18, released: 10, total: 23)  // 10 847 (18/23 ≥ 70 %)
/// RefundRule.standard.refund(amount: Money(kopecks: 49_900), photos: 4, released: 0, total: 7)     // 49 900 (4/7 < 70 %)
/// RefundRule.standard.refund(amount: Money(kopecks: 149_900), photos: 15, released: 3, total: 23) // 130 347: 20 of 23 not delivered
/// ```
public struct RefundRule: Equatable, Sendable {
    /// At or above this share of photos made the job is `partial` and every photo is
    /// delivered; below it, `failed`.
    public var partialThresholdPercent: Int

    public static let standard = RefundRule(partialThresholdPercent: 70)

    public init(partialThresholdPercent: Int) { self.partialThresholdPercent = partialThresholdPercent }

    /// At least the threshold of `total` was made. Integer arithmetic only: `photos / total ≥
    /// 70 %` is `photos × 100 ≥ 70 × total`.
    public func meetsThreshold(photos: Int, total: Int) -> Bool {
        photos * 100 >= partialThresholdPercent * total
    }

    /// How a job with `photos` made of `total` ends.
    public func outcome(photos: Int, total: Int) -> JobOutcome {
        if photos >= total { return .completed }
        return photos > 0 && meetsThreshold(photos: photos, total: total) ? .partial : .failed
    }

    /// Photos the customer gets in the end: all those made, or for a `failed` job only the
    /// `released` ones (delivered before the end).
    public func delivered(photos: Int, released: Int, total: Int) -> Int {
        outcome(photos: photos, total: total) == .failed ? min(released, photos) : photos
    }

    /// The refund when `photos` of `total` were made and `released` of them were already on
    /// their way to the customer when the job ended: the share of the photos the customer
    /// does not get. Zero when nothing is missing.
    public func refund(amount: Money, photos: Int, released: Int, total: Int) -> Money {
        guard total > 0 else { return Money(kopecks: 0) }
        let notDelivered = max(0, total - delivered(photos: photos, released: released, total: total))
        guard notDelivered > 0 else { return Money(kopecks: 0) }
        return Money(kopecks: amount.kopecks * notDelivered / total)
    }
}

/// How a job ended (the job's final status), by `RefundRule.outcome`.
public enum JobOutcome: String, Sendable, CaseIterable {
    /// Every photo.
    case completed
    /// At least the rule's threshold: every photo made is delivered, the missing share goes back.
    case partial
    /// Below the threshold (none at all included): only photos released before the end are
    /// delivered, the rest of the price goes back.
    case failed
}
