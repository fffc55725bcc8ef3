using Hive.Events.Spool;
using Hive.Protos.V1;

namespace Hive.SbxProxy.Audit;

/// <summary>
/// Hands every DNS query, connection decision, HTTP exchange and LLM call to Sbxd through the
/// sandbox's spool (source "net"). Values of injected secrets are replaced with <c>[REDACTED]</c> in
/// every text field before an event is written. Fail-closed: when an event cannot be spooled the
/// proxy stops serving (see <see cref="Healthy"/>) — connections are refused rather than unrecorded.
/// </summary>
internal sealed class NetAudit(string spoolDir, Func<IReadOnlyCollection<string>> secretValues) : IDisposable
{
    public const string Redacted = "[REDACTED]";

    private readonly SpoolWriter _spool = new(spoolDir, "net");
    private volatile bool _healthy = true;

    /// <summary>
    /// Asked before every new connection and request: false once an event could not be recorded
    /// (nothing else is let through), and while the sandbox's event budget is exhausted (the
    /// operation is refused and counted; it resumes once the operator raises the budget).
    /// </summary>
    public bool Healthy => _healthy && _spool.Admit();

    public bool Net(string kind, bool allowed, NetEvent body)
    {
        var secrets = secretValues();
        if (secrets.Count > 0)
        {
            body.Host = Redact(body.Host, secrets);
            body.Path = Redact(body.Path, secrets);
            body.Query = Redact(body.Query, secrets);
            body.Error = Redact(body.Error, secrets);
            body.Rule = Redact(body.Rule, secrets);
            for (var i = 0; i < body.Answers.Count; i++)
            {
                body.Answers[i] = Redact(body.Answers[i], secrets);
            }
        }

        return Append(new Event { TsUnixUs = NowUs(), Kind = kind, Decision = allowed ? "allow" : "deny", Net = body });
    }

    public bool Llm(LlmCallEvent body)
    {
        var secrets = secretValues();
        if (secrets.Count > 0)
        {
            body.Model = Redact(body.Model, secrets);
            body.Path = Redact(body.Path, secrets);
        }

        return Append(new Event { TsUnixUs = NowUs(), Kind = "llm.call", Decision = "allow", Llm = body });
    }

    private bool Append(Event e)
    {
        if (_spool.TryAppend(e))
        {
            return true;
        }

        _healthy = false;
        Console.Error.WriteLine($"hive-sbxproxy: a {e.Kind} event could not be recorded; refusing all traffic from now on (fail-closed)");
        return false;
    }

    public static string Redact(string text, IReadOnlyCollection<string> secrets)
    {
        if (string.IsNullOrEmpty(text))
        {
            return text;
        }

        foreach (var secret in secrets)
        {
            if (secret.Length >= 4 && text.Contains(secret, StringComparison.Ordinal))
            {
                text = text.Replace(secret, Redacted, StringComparison.Ordinal);
            }
        }

        return text;
    }

    public static long NowUs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    public void Dispose() => _spool.Dispose();
}
