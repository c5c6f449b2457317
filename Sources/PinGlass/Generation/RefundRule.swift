/// How much of a payment goes back when a job ends with photos missing (architecture.md,
/// "Refund rule", from the original): every photo → nothing; at least `partialThresholdPercent`
/// of the photos → the missing share, `amount × missing / total` in kopecks rounded down (the
/// customer never gets more than the missing share); fewer → everything.
///
/// ```swift
/// RefundRule.standard.refund(amount: Money(kopecks: 49_900), photos: 18, total: 23)   // 10 847 kopecks
/// RefundRule.standard.refund(amount: Money(kopecks: 49_900), photos: 4, total: 7)     // 49 900 (4/7 < 70 %)
/// ```
public struct RefundRule: Equatable, Sendable {
    /// At or above this share of delivered photos only the missing share is refunded.
    public var partialThresholdPercent: Int

    public static let standard = RefundRule(partialThresholdPercent: 70)

    public init(partialThresholdPercent: Int) { self.partialThresholdPercent = partialThresholdPercent }

    /// The refund for `photos` delivered out of `total`; zero when nothing is missing.
    /// Integer arithmetic only: `photos / total ≥ 70 %` is `photos × 100 ≥ 70 × total`.
    public func refund(amount: Money, photos: Int, total: Int) -> Money {
        let missing = max(0, total - photos)
        guard missing > 0, total > 0 else { return Money(kopecks: 0) }
        if photos * 100 >= partialThresholdPercent * total {
            return Money(kopecks: amount.kopecks * missing / total)
        }
        return amount
    }
}

/// How a job ended, by the photos it produced (the job's final status).
public enum JobOutcome: String, Sendable, CaseIterable {
    /// Every photo.
    case completed
    /// Some photos (the refund rule decides how much goes back).
    case partial
    /// No photo: everything goes back.
    case failed

    public init(photos: Int, total: Int) {
        self = photos >= total ? .completed : photos == 0 ? .failed : .partial
    }
}
