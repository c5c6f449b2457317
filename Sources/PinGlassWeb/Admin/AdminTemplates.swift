/// The admin pages' mustache templates and style sheet (served at `/admin/admin.css`): no
/// script, no CDN, light and dark by the system's choice, readable from 360 px wide.
enum AdminTemplates {
    static let all: [(String, String)] = [("layout", layout), ("login", login), ("message", message),
                                          ("dashboard", dashboard), ("audit", audit)]

    static let layout = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="color-scheme" content="light dark">
        <title>{{title}} · PinGlass admin</title>
        <link rel="stylesheet" href="/admin/admin.css">
        </head><body>
        <header><strong>PinGlass admin</strong>
        {{#admin}}
        <nav><a href="/admin">Dashboard</a> <a href="/admin/audit">Audit</a></nav>
        <div class="who"><span>{{login}} ({{role}})</span>
        <form method="post" action="/admin/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Log out</button></form>
        <form method="post" action="/admin/logout-everywhere"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Log out everywhere</button></form>
        </div>
        {{/admin}}
        </header>
        <main><h1>{{title}}</h1>
        {{{body}}}
        </main></body></html>
        """

    static let login = """
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <form method="post" action="/admin/login" class="login">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="username">Name</label>
        <input id="username" name="username" autocomplete="username" required value="{{username}}">
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required>
        <button type="submit">Log in</button>
        </form>
        """

    static let message = """
        <p class="error" role="alert">{{message}}</p>
        <p><a href="/admin">Back to the dashboard</a></p>
        """

    static let dashboard = """
        <section><h2>Money in</h2>
        <div class="cards">
        {{#money}}<div class="card"><div class="label">{{name}}</div><div class="amount">{{paid}}</div>
        <div class="small">payments: {{payments}} · refunded {{refunded}}</div></div>{{/money}}
        </div></section>
        <section><h2>Jobs by status</h2>
        <div class="scroll"><table><thead><tr><th>Status</th><th class="n">Jobs</th></tr></thead><tbody>
        {{#jobs}}<tr><td>{{status}}</td><td class="n">{{count}}</td></tr>{{/jobs}}
        </tbody></table></div></section>
        <section><h2>Queues</h2>
        <div class="scroll"><table><thead><tr><th>Queue</th><th>State</th><th class="n">Rows</th></tr></thead><tbody>
        {{#queues}}<tr><td>{{queue}}</td><td>{{state}}</td><td class="n">{{count}}</td></tr>{{/queues}}
        </tbody></table></div></section>
        <p class="small">As of {{asOf}} UTC. Today is the UTC day.</p>
        """

    static let audit = """
        <p class="small">Newest first; the latest {{limit}} entries.</p>
        <div class="scroll"><table class="audit"><thead><tr><th>When (UTC)</th><th>Who</th><th>What</th><th>Target</th>
        <th>Before → after</th><th>From</th><th>Request</th></tr></thead><tbody>
        {{#entries}}<tr><td data-label="When">{{at}}</td><td data-label="Who">{{actor}}</td><td data-label="What">{{action}}</td>
        <td data-label="Target">{{target}}</td>
        <td data-label="Change"><code>{{before}}</code> → <code>{{after}}</code>{{#details}}<br><code>{{details}}</code>{{/details}}</td>
        <td data-label="From">{{address}}</td><td data-label="Request">{{requestID}}</td></tr>{{/entries}}
        {{^entries}}<tr><td colspan="7">Nothing recorded yet.</td></tr>{{/entries}}
        </tbody></table></div>
        """

    static let css = """
        :root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#5b6470;--line:#d5d9de;--card:#f4f6f8;--accent:#0b5cad;--err:#b3261e}
        @media (prefers-color-scheme:dark){:root{--bg:#15181c;--fg:#e6e8eb;--muted:#9aa3ad;--line:#343a42;--card:#1f2328;--accent:#6cb0ff;--err:#ff8a80}}
        *{box-sizing:border-box}
        body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,sans-serif}
        header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.75rem 1rem;border-bottom:1px solid var(--line)}
        nav a{margin-right:.75rem}
        a{color:var(--accent)}
        .who{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-left:auto}
        .who form{margin:0}
        main{padding:1rem;max-width:72rem;margin:0 auto}
        h1{font-size:1.4rem;margin:.25rem 0 1rem}
        h2{font-size:1.1rem;margin:1.25rem 0 .5rem}
        .cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.75rem}
        .card{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:.75rem}
        .label,.small{color:var(--muted);font-size:.85rem}
        .amount{font-size:1.35rem;font-weight:600}
        .scroll{overflow-x:auto}
        table{border-collapse:collapse;width:100%}
        th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
        td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
        code{font-size:.8rem;word-break:break-all}
        form.login{display:grid;gap:.5rem;max-width:22rem}
        input{font:inherit;padding:.5rem;border:1px solid var(--line);border-radius:.35rem;background:var(--bg);color:var(--fg);width:100%}
        button{font:inherit;padding:.45rem .9rem;border:1px solid var(--accent);border-radius:.35rem;background:var(--accent);color:var(--bg);cursor:pointer}
        .who button{background:transparent;color:var(--accent);padding:.25rem .6rem}
        .error{color:var(--err);font-weight:600}
        @media (max-width:40rem){table.audit thead{display:none}table.audit tr{display:block;border-bottom:1px solid var(--line);padding:.4rem 0}
        table.audit td{display:flex;gap:.5rem;border:0;padding:.1rem .25rem;overflow-wrap:anywhere;min-width:0}table.audit td::before{content:attr(data-label);color:var(--muted);min-width:4.5rem;flex:none}}
        """
}
