import ArgumentParser
import PinGlass
import PinGlassConfig

struct Deliver: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send generated photos, final messages and operator alerts to Telegram; retry and pace them.",
        discussion: """
            Claims due delivery rows (albums of 2-10 photos, single photos, each job's final message \
            in the user's language with the refund and a link to PUBLIC_BASE_URL, alerts for \
            ADMIN_TELEGRAM_CHAT_ID) and sends them. A job's photos go out while it is still generating, \
            in batches of at most 10 as soon as a batch's photos are stored, the short batch first \
            (23 photos: 3, 10, 10), the rest and the final message when it ends. Photos go \
            by signed link when Telegram can fetch it (PUBLIC_MEDIA_URL or the S3 endpoint is https and \
            not loopback), otherwise as uploaded bytes; a refused link falls back to the bytes at once. \
            Pace: at most one message per --chat-interval per chat (an album of N photos counts N; a \
            group such as the admin chat at most one per 3 s) and --global-rate messages per second \
            overall (counted over 1.1 s, a margin for late arrivals), kept in PostgreSQL, so it holds for every deliver process on every machine together. \
            429 waits Telegram's retry_after, for that chat, and for every chat when that chat had kept \
            its pace (Telegram's bot-wide flood control); 5xx, timeouts and \
            network errors retry after 1 min, 5 min, 15 min, then hourly, for 24 h; 403 (blocked) and \
            400 chat not found fail the chat's waiting rows at once and alert the operator; 401 stops \
            the pass. A new album, a finished job or an alert wakes a waiting deliver at once \
            (PostgreSQL NOTIFY), and the loop also wakes when the next paced row comes due; --every is \
            the longest wait (keep it short: a run stops starting passes one --every before --for \
            ends). A process killed after Telegram's answer and before recording it leaves \
            one row whose lease runs out: that batch may be shown twice, nothing else. Failed rows go \
            back with `pinglass requeue-delivery <id>`. \
            Cron: * * * * * pinglass deliver --for 55s --every 2s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyOptions
    @OptionGroup var settings: DutySettingOptions<Deliverer.Config>

    var config: Deliverer.Config { settings.config }

    func validate() throws { _ = try loop.schedule(validating: config) }

    func run() throws {
        try loop.run(global: global, config: config, wakeOn: ["deliver"], nextDue: { try $0.secondsUntilDue() }) {
            try Deliverer(deps: $0, config: $1)
        }
    }
}
