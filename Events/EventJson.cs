using System.Buffers;
using System.Text.Json;
using Hive.Protos.V1;

namespace Hive.Events;

/// <summary>
/// The JSON form of an event on the API (docs/EVENTS.md): common fields first, then the fields of
/// its kind, snake_case, empty strings and absent facts left out.
/// </summary>
public static class EventJson
{
    public static void Write(Utf8JsonWriter json, string sandbox, Event e)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(e);
        json.WriteStartObject();
        json.WriteNumber("seq", e.Seq);
        json.WriteString("ts", Timestamp(e.TsUnixUs));
        json.WriteString("sandbox", sandbox);
        json.WriteString("kind", e.Kind);
        Optional(json, "decision", e.Decision);
        if (e.Count > 0)
        {
            // An aggregate of identical denials: how many, from first_ts to ts.
            json.WriteNumber("count", e.Count);
            json.WriteString("first_ts", Timestamp(e.FirstTsUnixUs));
        }

        switch (e.BodyCase)
        {
            case Event.BodyOneofCase.Fs:
                var fs = e.Fs;
                json.WriteString("op", fs.Op);
                json.WriteString("mount", fs.Mount);
                json.WriteString("path", fs.Path);
                Optional(json, "target", fs.Target);
                json.WriteNumber("bytes", fs.Bytes);
                json.WriteNumber("duration_us", fs.DurationUs);
                json.WriteNumber("errno", fs.Errno);
                break;
            case Event.BodyOneofCase.Artifact:
                json.WriteString("mount", e.Artifact.Mount);
                json.WriteString("path", e.Artifact.Path);
                json.WriteNumber("size", e.Artifact.Size);
                if (e.Artifact.Sha256.Length > 0)
                {
                    json.WriteString("sha256", e.Artifact.Sha256);
                }
                else
                {
                    json.WriteNull("sha256");
                }

                Optional(json, "hash_skipped", e.Artifact.HashSkipped);
                break;
            case Event.BodyOneofCase.Net:
                WriteNet(json, e.Net);
                break;
            case Event.BodyOneofCase.Llm:
                var llm = e.Llm;
                json.WriteString("provider", llm.Provider);
                json.WriteString("model", llm.Model);
                json.WriteNumber("input_tokens", llm.InputTokens);
                json.WriteNumber("output_tokens", llm.OutputTokens);
                json.WriteBoolean("stream", llm.Stream);
                json.WriteNumber("latency_ms", llm.LatencyMs);
                json.WriteNumber("status", llm.Status);
                Optional(json, "host", llm.Host);
                Optional(json, "path", llm.Path);
                break;
            case Event.BodyOneofCase.Exec:
                WriteExec(json, e.Kind, e.Exec);
                break;
            case Event.BodyOneofCase.Lifecycle:
                Optional(json, "detail", e.Lifecycle.Detail);
                Optional(json, "component", e.Lifecycle.Component);
                if (e.Lifecycle.Pid != 0)
                {
                    json.WriteNumber("pid", e.Lifecycle.Pid);
                }

                break;
            case Event.BodyOneofCase.Resource:
                json.WriteNumber("cpu_percent", Math.Round(e.Resource.CpuPercent, 2));
                json.WriteNumber("memory_bytes", e.Resource.MemoryBytes);
                json.WriteNumber("memory_limit_bytes", e.Resource.MemoryLimitBytes);
                json.WriteNumber("pids", e.Resource.Pids);
                if (e.Resource.DiskLimitBytes > 0)
                {
                    json.WriteNumber("disk_bytes", e.Resource.DiskBytes);
                    json.WriteNumber("disk_limit_bytes", e.Resource.DiskLimitBytes);
                    json.WriteNumber("disk_inodes", e.Resource.DiskInodes);
                    json.WriteNumber("disk_limit_inodes", e.Resource.DiskLimitInodes);
                }

                if (e.Resource.Workspaces.Count > 0)
                {
                    json.WriteStartArray("workspaces");
                    foreach (var w in e.Resource.Workspaces)
                    {
                        json.WriteStartObject();
                        json.WriteString("mount", w.Mount);
                        json.WriteNumber("disk_bytes", w.Bytes);
                        json.WriteNumber("disk_limit_bytes", w.LimitBytes);
                        json.WriteNumber("disk_inodes", w.Inodes);
                        json.WriteNumber("disk_limit_inodes", w.LimitInodes);
                        json.WriteEndObject();
                    }

                    json.WriteEndArray();
                }

                break;
            case Event.BodyOneofCase.Policy:
                json.WriteString("target", e.Policy.Target);
                json.WriteString("actor", e.Policy.Actor);
                if (e.Policy.Rules.Length > 0)
                {
                    json.WritePropertyName("rules");
                    json.WriteRawValue(e.Policy.Rules, skipInputValidation: false);
                }

                break;
            case Event.BodyOneofCase.Mcp:
                json.WriteString("tool", e.Mcp.Tool);
                json.WriteString("arguments", e.Mcp.Arguments);
                Optional(json, "session", e.Mcp.Session);
                if (e.Kind == "mcp.call")
                {
                    json.WriteNumber("duration_ms", e.Mcp.DurationMs);
                    Optional(json, "error", e.Mcp.Error);
                }

                break;
            case Event.BodyOneofCase.Audit:
                WriteAudit(json, e.Audit);
                break;
            case Event.BodyOneofCase.None:
            default:
                break;
        }

        json.WriteEndObject();
    }

    /// <summary>One event as a UTF-8 JSON document.</summary>
    public static byte[] ToUtf8(string sandbox, Event e)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            Write(json, sandbox, e);
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static string Timestamp(long unixUs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixUs / 1000).AddTicks(unixUs % 1000 * 10).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    private static void WriteAudit(Utf8JsonWriter json, AuditEvent audit)
    {
        Optional(json, "detail", audit.Detail);
        json.WriteNumber("budget_bytes", audit.BudgetBytes);
        json.WriteNumber("used_bytes", audit.UsedBytes);
        if (audit.Refused > 0)
        {
            json.WriteNumber("refused", audit.Refused);
        }

        if (audit.Throttled > 0)
        {
            json.WriteNumber("throttled", audit.Throttled);
            json.WriteNumber("waited_ms", audit.WaitedMs);
        }

        Optional(json, "actor", audit.Actor);
    }

    private static void WriteExec(Utf8JsonWriter json, string kind, ExecEvent exec)
    {
        json.WriteString("id", exec.Id);
        json.WriteString("command", exec.Command);
        Optional(json, "cwd", exec.Cwd);
        Optional(json, "via", exec.Via);
        if (kind == "exec.started")
        {
            return;
        }

        json.WriteNumber("exit_code", exec.ExitCode);
        json.WriteNumber("duration_ms", exec.DurationMs);
        json.WriteNumber("stdout_bytes", exec.StdoutBytes);
        json.WriteNumber("stderr_bytes", exec.StderrBytes);
        json.WriteBoolean("timed_out", exec.TimedOut);
        json.WriteBoolean("oom_killed", exec.OomKilled);
        Optional(json, "error", exec.Error);
    }

    private static void WriteNet(Utf8JsonWriter json, NetEvent net)
    {
        Optional(json, "protocol", net.Protocol);
        Optional(json, "host", net.Host);
        Optional(json, "ip", net.Ip);
        if (net.Port != 0)
        {
            json.WriteNumber("port", net.Port);
        }

        Optional(json, "method", net.Method);
        Optional(json, "path", net.Path);
        Optional(json, "query", net.Query);
        if (net.Status != 0)
        {
            json.WriteNumber("status", net.Status);
        }

        json.WriteNumber("bytes_out", net.BytesOut);
        json.WriteNumber("bytes_in", net.BytesIn);
        json.WriteNumber("duration_us", net.DurationUs);
        Optional(json, "rule", net.Rule);
        Optional(json, "error", net.Error);
        Optional(json, "dns_type", net.DnsType);
        if (net.Answers.Count > 0)
        {
            json.WriteStartArray("answers");
            foreach (var answer in net.Answers)
            {
                json.WriteStringValue(answer);
            }

            json.WriteEndArray();
        }
    }

    private static void Optional(Utf8JsonWriter json, string name, string value)
    {
        if (value.Length > 0)
        {
            json.WriteString(name, value);
        }
    }
}
