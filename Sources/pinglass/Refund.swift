import ArgumentParser
import PinGlass
import PinGlassConfig

struct Refund: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send due refunds to T-Bank (Cancel) and record the bank's answer with the payment.",
        discussion: """
            Claims due refunds one at a time (pending ones, and requested ones whose retry time came \
            or whose sender died), marks each `requested` before calling the bank, then sends T-Bank \
            Cancel with the payment's own terminal: Amount = the refund, a refund receipt, and \
            ExternalRequestId = the refund's UUID. A refund whose last attempt has an unknown outcome \
            is asked about first (GetState): the bank's figures show it went through (recorded, nothing \
            sent) or not (Cancel); when they cannot tell, a card payment gets the same key again (the \
            bank returns the first outcome), an SBP payment (the key is not honoured there) nothing: it \
            stays `requested`, is asked again after --retry-cap and alerts. On an SBP payment even a \
            GetState that shows no refund is not trusted right after a Cancel whose outcome is unknown \
            (the bank's state may lag): nothing is sent, the bank is asked again, and after --settle \
            the refund is held for an operator (pinglass resolve-refund <id> --landed|--not-landed). \
            A refund is claimed only while the pass has three times --timeout left (GetState, Cancel, \
            and GetState again after a refusal, each at its full timeout), so a Cancel is never cut \
            short; --lease must be at least three times --timeout plus 10s, and with --for three \
            times --timeout must fit in it. Money back: the refund \
            becomes `succeeded` and the payment `partially_refunded` or `refunded`, the refunded sum \
            taken from the bank's own figures (paid − what stays charged), in one transaction. Unknown \
            outcomes (timeouts, network, 5xx, T-Bank 9999) stay `requested` and are retried with backoff \
            (--retry-base doubling up to --retry-cap), with an alert after --alert-after-attempts; any \
            other T-Bank refusal (wrong amount, payment not refundable, receipt, terminal) fails the \
            refund, after an unknown outcome only once GetState shows the money did not go back, and \
            alerts ADMIN_TELEGRAM_CHAT_ID (fix the cause, then `pinglass requeue-refund <id>`). A \
            refund whose terminal is not configured waits, alerting from its first attempt. A finished \
            job or a manual refund wakes a waiting sender at once (PostgreSQL NOTIFY refund); --every \
            is the longest wait. Safe to run on several machines at once. \
            Cron: * * * * * pinglass refund --for 55s --every 10s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyOptions
    @OptionGroup var settings: DutySettingOptions<RefundSender.Config>

    var config: RefundSender.Config { settings.config }

    func validate() throws {
        let schedule = try loop.schedule(validating: config)
        try DutyOptions.validated { try config.validate(runFor: schedule.runFor) }
    }

    func run() throws {
        try loop.run(global: global, config: config, wakeOn: ["refund"]) { try RefundSender(deps: $0, config: $1) }
    }
}
