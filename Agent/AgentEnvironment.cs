using System.Collections;

namespace Hive.Agent;

/// <summary>
/// The environment commands see: the container's environment without the agent's own plumbing
/// (its loader path and runtime knobs), plus per-call additions.
/// </summary>
/// <remarks>
/// Sbxd passes the commands' environment (the image's, the network's and the sandbox's own) with
/// every name prefixed by <see cref="CommandPrefix"/>, so none of it applies to the agent itself: an
/// <c>LD_PRELOAD</c>, <c>DOTNET_STARTUP_HOOKS</c> or <c>ASPNETCORE_URLS</c> meant for commands must
/// not change what PID 1 loads or where it listens. Then commands get exactly those variables, the
/// prefix taken off, and nothing of the agent's own. An agent started without any (by hand, by
/// tests) passes its own environment on, minus its plumbing.
/// </remarks>
internal sealed class AgentEnvironment
{
    /// <summary>Kept in step with Sbxd's SandboxRuntime.CommandEnvironmentPrefix.</summary>
    public const string CommandPrefix = "HIVE_CMD_";

    private readonly SortedDictionary<string, string> _base = new(StringComparer.Ordinal);

    public AgentEnvironment()
    {
        var forCommands = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            var key = (string)entry.Key;
            var value = (string?)entry.Value ?? string.Empty;
            if (key.StartsWith(CommandPrefix, StringComparison.Ordinal))
            {
                if (key.Length > CommandPrefix.Length)
                {
                    forCommands[key[CommandPrefix.Length..]] = value;
                }
            }
            else if (!IsAgentOnly(key))
            {
                _base[key] = value;
            }
        }

        if (forCommands.Count > 0)
        {
            _base.Clear();
            foreach (var (key, value) in forCommands)
            {
                _base[key] = value;
            }
        }

        _base.TryAdd("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        _base.TryAdd("HOME", "/root");
    }

    public static bool IsAgentOnly(string key) =>
        key is "LD_LIBRARY_PATH" or "LD_PRELOAD"
        || key.StartsWith("DOTNET_", StringComparison.Ordinal)
        || key.StartsWith("HIVE_AGENT_", StringComparison.Ordinal)
        || key.StartsWith("ASPNETCORE_", StringComparison.Ordinal);

    public IReadOnlyList<string> ForChild(IDictionary<string, string> extra)
    {
        var merged = new SortedDictionary<string, string>(_base, StringComparer.Ordinal);
        foreach (var (key, value) in extra)
        {
            if (key.Length == 0 || key.Contains('=', StringComparison.Ordinal) || key.Contains('\0', StringComparison.Ordinal) || value.Contains('\0', StringComparison.Ordinal))
            {
                throw new Hive.Wire.RpcException(Hive.Wire.StatusCode.InvalidArgument, $"invalid environment variable '{key}'");
            }

            merged[key] = value;
        }

        return merged.Select(kv => kv.Key + "=" + kv.Value).ToList();
    }
}
