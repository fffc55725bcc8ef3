using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Hive.Controller.Api;

namespace Hive.Controller.Sandboxes.Config;

/// <summary>
/// Turns a create request into a <see cref="SandboxConfig"/>, applying the seed's defaults and
/// rejecting anything out of range with a 400 that names every problem.
/// </summary>
internal static partial class SandboxConfigValidator
{
    public const long MinMemoryBytes = 64L << 20; // the agent (PID 1) lives inside the limit: ~40 MB charged
    public const int MaxTimeoutSeconds = 86400;
    public const int MinPids = 64; // the agent (PID 1) and its runtime threads count too: ~20 of them
    public const int MaxPids = 32768;

    /// <summary>The name rule of DESIGN.md; checked before a name touches a path, cgroup, interface or unit.</summary>
    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$", RegexOptions.CultureInvariant)]
    public static partial Regex NamePattern();

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex ImagePattern();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,255}$", RegexOptions.CultureInvariant)]
    private static partial Regex EnvNamePattern();

    public static bool IsValidName(string name) => NamePattern().IsMatch(name) && !name.Contains("..", StringComparison.Ordinal);

    public static string NameError(string name) =>
        $"invalid sandbox name '{Truncate(name)}': use 1-63 characters a-z, 0-9, '.', '_', '-', starting with a letter or digit";

    /// <summary>Smallest <c>disk</c> or workspace <c>quota</c>: room for ext4's journal and a few thousand files.</summary>
    public const long MinDiskBytes = 32L << 20;

    public static SandboxConfig Validate(CreateSandboxRequest request, string? pathName, long hostMemoryBytes, int hostCpus, DiskSettings? diskSettings = null)
    {
        var disks = diskSettings ?? DiskSettings.Default;
        var errors = new List<string>();
        var name = request.Name ?? pathName ?? RandomName();
        if (pathName is not null && request.Name is not null && request.Name != pathName)
        {
            errors.Add($"name in the body ('{Truncate(request.Name)}') differs from the name in the path ('{Truncate(pathName)}')");
        }

        if (!IsValidName(name))
        {
            errors.Add(NameError(name));
        }

        var image = request.Image ?? "base";
        if (!ImagePattern().IsMatch(image))
        {
            errors.Add($"invalid image name '{Truncate(image)}'");
        }

        long memory = 512L << 20;
        if (request.Memory is { } m)
        {
            if (!TryReadMemory(m, out memory))
            {
                errors.Add($"invalid memory '{Truncate(m.ToString())}': use a size like \"512m\" or \"1g\"");
            }
            else if (memory < MinMemoryBytes || memory > hostMemoryBytes)
            {
                errors.Add($"memory must be between {MemorySize.Format(MinMemoryBytes)} and {MemorySize.Format(hostMemoryBytes)} (the host's memory)");
            }
        }

        var disk = disks.DefaultDiskBytes;
        if (request.Disk is { } d)
        {
            if (ReadSize(d, "disk", disks, errors) is { } bytes)
            {
                disk = bytes;
            }
        }

        var cpus = request.Cpus ?? 1.0;
        if (!double.IsFinite(cpus) || cpus < 0.01 || cpus > hostCpus)
        {
            errors.Add($"cpus must be between 0.01 and {hostCpus} (the host's cores)");
        }

        var pids = request.Pids ?? 128;
        if (pids is < MinPids or > MaxPids)
        {
            errors.Add($"pids must be between {MinPids} and {MaxPids}");
        }

        var egressGiven = request.Egress is { ValueKind: not JsonValueKind.Null };
        var network = request.Network ?? (egressGiven ? "isolated" : "none");
        switch (network)
        {
            case "none":
                if (egressGiven)
                {
                    errors.Add("egress rules need network 'isolated' or 'shared' (network 'none' has no egress at all)");
                }

                break;
            case "isolated" or "shared":
                break;
            default:
                errors.Add($"invalid network '{Truncate(network)}': use none, isolated or shared");
                break;
        }

        var timeout = request.Timeout ?? 3600;
        if (timeout is < 1 or > MaxTimeoutSeconds)
        {
            errors.Add($"timeout must be between 1 and {MaxTimeoutSeconds} seconds");
        }

        var env = request.Env ?? [];
        foreach (var (key, value) in env)
        {
            if (!EnvNamePattern().IsMatch(key) || value.Contains('\0', StringComparison.Ordinal))
            {
                errors.Add($"invalid environment variable '{Truncate(key)}'");
            }
        }

        var fs = ValidateFs(request.Fs, errors, disks);

        var egress = egressGiven ? ValidateEgress(request.Egress!.Value, errors) : null;
        string? group = null;
        if (request.Group is not null && network != "shared")
        {
            errors.Add("group is only meaningful with network 'shared'");
        }
        else if (network == "shared")
        {
            group = request.Group ?? "default";
            if (!NamePattern().IsMatch(group))
            {
                errors.Add($"invalid group '{Truncate(group)}': lowercase letters, digits, '.', '_' and '-'");
            }
        }

        var expose = ValidateExpose(request.Expose, network, errors);

        if (request.CustomMcps is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null) })
        {
            errors.Add("custom_mcps must be an object");
        }

        if (request.Skills?.Any(s => !NamePattern().IsMatch(s)) == true)
        {
            errors.Add("skills must be names like \"pdf\"");
        }

        if (errors.Count > 0)
        {
            throw ApiException.BadRequest(string.Join("; ", errors));
        }

        return new SandboxConfig
        {
            Name = name,
            Image = image,
            MemoryBytes = memory,
            DiskBytes = disk,
            DiskInodes = disks.Inodes(disk),
            Cpus = Math.Round(cpus, 3),
            Pids = (int)pids,
            Network = network,
            TimeoutSeconds = (int)timeout,
            Env = env,
            Skills = request.Skills,
            CustomMcps = request.CustomMcps,
            LlmBaseUrl = request.LlmBaseUrl,
            LlmApiKey = request.LlmApiKey,
            LlmModel = request.LlmModel,
            Fs = fs,
            Egress = egress,
            Group = group,
            Expose = expose,
        };
    }

    public const int MaxExposedPorts = 64;

    /// <summary>
    /// <c>expose</c>: the ports other members of a shared group may connect to (1-65535, at most 64,
    /// duplicates dropped); null when none. Only network <c>shared</c> has peers to expose to.
    /// </summary>
    private static List<int>? ValidateExpose(List<long>? requested, string network, List<string> errors)
    {
        if (requested is null || requested.Count == 0)
        {
            return null;
        }

        if (network != "shared")
        {
            errors.Add("expose is only meaningful with network 'shared' (ports other members of the group may connect to)");
            return null;
        }

        if (requested.Count > MaxExposedPorts)
        {
            errors.Add($"expose: at most {MaxExposedPorts} ports");
            return null;
        }

        var bad = requested.Where(p => p is < 1 or > 65535).ToList();
        if (bad.Count > 0)
        {
            errors.Add($"expose: {string.Join(", ", bad.Take(5))} {(bad.Count == 1 ? "is not a port number" : "are not port numbers")} (1-65535)");
            return null;
        }

        return requested.Select(p => (int)p).Distinct().ToList();
    }

    /// <summary>Validates an egress policy; returns it as compact JSON (what SbxProxy gets).</summary>
    public static string? ValidateEgress(JsonElement egress, List<string> errors)
    {
        try
        {
            Hive.Policy.Net.EgressPolicy.Parse(egress);
            return JsonSerializer.Serialize(egress);
        }
        catch (Hive.Policy.Net.EgressPolicyException ex)
        {
            errors.Add(ex.Message);
            return null;
        }
    }

    /// <summary>Lists the fields an explicit request sets differently from an existing sandbox (get-or-create).</summary>
    public static IReadOnlyList<string> Differences(CreateSandboxRequest request, SandboxConfig requested, SandboxConfig existing)
    {
        var diffs = new List<string>();
        void Check(bool given, string field, object a, object b)
        {
            if (given && !Equals(a, b))
            {
                diffs.Add($"{field} is {b}, requested {a}");
            }
        }

        Check(request.Image is not null, "image", requested.Image, existing.Image);
        Check(request.Memory is not null, "memory", requested.Memory, existing.Memory);
        Check(request.Disk is not null, "disk", requested.Disk ?? "(none)", existing.Disk ?? "(none)");
        Check(request.Cpus is not null, "cpus", requested.Cpus, existing.Cpus);
        Check(request.Pids is not null, "pids", requested.Pids, existing.Pids);
        Check(request.Network is not null, "network", requested.Network, existing.Network);
        Check(request.Timeout is not null, "timeout", requested.TimeoutSeconds, existing.TimeoutSeconds);
        Check(request.Egress is not null, "egress", requested.Egress ?? "(every host)", existing.Egress ?? "(every host)");
        Check(request.Group is not null, "group", requested.Group ?? "(none)", existing.Group ?? "(none)");
        Check(request.Expose is not null, "expose", string.Join(",", requested.Expose ?? []), string.Join(",", existing.Expose ?? []));
        // A quota not asked for is whatever the existing workspace has; inode counts follow from quotas.
        var requestedFs = requested.Fs.Select((m, i) => m with { Quota = m.Quota ?? (i < existing.Fs.Count ? existing.Fs[i].Quota : null), QuotaInodes = null });
        var existingFs = existing.Fs.Select(m => m with { QuotaInodes = null });
        Check(request.Fs is not null, "fs", JsonSerializer.Serialize(requestedFs), JsonSerializer.Serialize(existingFs));
        return diffs;
    }

    public const int MaxMounts = 8;

    private static readonly string[] ReservedMounts = ["/proc", "/sys", "/dev", "/.hive"];

    /// <summary>
    /// New ACLs for mounts that exist: every entry must name one of <paramref name="existing"/>'s
    /// mounts (backend and mount cannot change on a live sandbox). Returns the updated mount list.
    /// </summary>
    public static IReadOnlyList<FsMountConfig> ValidateAclUpdate(UpdateSandboxRequest request, IReadOnlyList<FsMountConfig> existing)
    {
        if (request.Fs is not { Count: > 0 })
        {
            throw ApiException.BadRequest("fs: give at least one {\"mount\", \"acls\"} entry to update");
        }

        var errors = new List<string>();
        var validated = ValidateFs(request.Fs, errors, DiskSettings.Default);
        if (request.Fs.Any(f => f.Quota is not null))
        {
            errors.Add("fs: a workspace's quota is set when the sandbox is created and cannot change on a live sandbox");
        }

        if (errors.Count > 0)
        {
            throw ApiException.BadRequest(string.Join("; ", errors));
        }

        var updated = existing.ToList();
        foreach (var change in validated)
        {
            var index = updated.FindIndex(m => m.Mount == change.Mount);
            if (index < 0)
            {
                errors.Add($"fs: no workspace is mounted at '{change.Mount}' (mounts: {string.Join(", ", existing.Select(m => m.Mount))})");
                continue;
            }

            if (change.Backend != updated[index].Backend)
            {
                errors.Add($"fs: the backend of '{change.Mount}' cannot change on a live sandbox");
                continue;
            }

            updated[index] = updated[index] with { Acls = change.Acls };
        }

        if (errors.Count > 0)
        {
            throw ApiException.BadRequest(string.Join("; ", errors));
        }

        return updated;
    }

    private static List<FsMountConfig> ValidateFs(List<FsMountRequest>? requested, List<string> errors, DiskSettings disks)
    {
        var result = new List<FsMountConfig>();
        if (requested is null)
        {
            return result;
        }

        if (requested.Count > MaxMounts)
        {
            errors.Add($"fs: at most {MaxMounts} mounts");
            return result;
        }

        for (var i = 0; i < requested.Count; i++)
        {
            var m = requested[i];
            var backend = m.Backend ?? "local";
            if (backend != "local")
            {
                errors.Add($"fs[{i}].backend: '{Truncate(backend)}' is not available (use \"local\")");
                continue;
            }

            if (m.Mount is not { } mount || !Hive.Policy.Fs.AclPolicy.IsNormalized(mount) || mount == "/" || mount.Length > 256)
            {
                errors.Add($"fs[{i}].mount: must be an absolute, normalized path other than '/' (e.g. \"/workspace\")");
                continue;
            }

            if (ReservedMounts.Any(r => mount == r || mount.StartsWith(r + "/", StringComparison.Ordinal)))
            {
                errors.Add($"fs[{i}].mount: '{mount}' is reserved");
                continue;
            }

            if (result.Any(o => o.Mount == mount || mount.StartsWith(o.Mount + "/", StringComparison.Ordinal) || o.Mount.StartsWith(mount + "/", StringComparison.Ordinal)))
            {
                errors.Add($"fs[{i}].mount: '{mount}' overlaps another mount");
                continue;
            }

            List<FsAclConfig>? acls = null;
            if (m.Acls is not null)
            {
                acls = [];
                var rules = new List<Hive.Policy.Fs.AclRule>();
                for (var j = 0; j < m.Acls.Count; j++)
                {
                    var rule = m.Acls[j];
                    if (rule.Path is null || rule.Access is null || !Hive.Policy.Fs.AccessNames.TryParse(rule.Access, out var access))
                    {
                        errors.Add($"fs[{i}].acls[{j}]: needs a path and access \"rw\", \"ro\" or \"deny\"");
                        continue;
                    }

                    rules.Add(new Hive.Policy.Fs.AclRule(rule.Path, access));
                    acls.Add(new FsAclConfig(rule.Path, rule.Access));
                }

                try
                {
                    Hive.Policy.Fs.AclPolicy.Parse(mount, rules);
                }
                catch (Hive.Policy.Fs.AclException ex)
                {
                    errors.Add($"fs[{i}]: {ex.Message}");
                }
            }

            if (m.Root is { } root && (!Hive.Policy.Fs.AclPolicy.IsNormalized(root) || root == "/" || root.Length > 1024))
            {
                errors.Add($"fs[{i}].root: must be an absolute, normalized directory path");
                continue;
            }

            long? quota = null;
            if (m.Quota is { } q && q.ValueKind != JsonValueKind.Null)
            {
                if (m.Root is not null)
                {
                    errors.Add($"fs[{i}].quota: a shared workspace (root) is the operator's own directory and has no quota; quotas are for local workspaces");
                    continue;
                }

                quota = ReadSize(q, $"fs[{i}].quota", disks, errors);
            }

            result.Add(new FsMountConfig(backend, mount, acls, m.Root, quota, quota is { } b ? disks.Inodes(b) : null));
        }

        return result;
    }

    /// <summary>A disk size like a memory size ("10g" or bytes), at least <see cref="MinDiskBytes"/> and at most the data directory's file system; rounded down to 4 KiB.</summary>
    private static long? ReadSize(JsonElement element, string field, DiskSettings disks, List<string> errors)
    {
        if (!TryReadMemory(element, out var bytes))
        {
            errors.Add($"invalid {field} '{Truncate(element.ToString())}': use a size like \"10g\" or \"512m\"");
            return null;
        }

        if (bytes < MinDiskBytes || bytes > disks.MaxBytes)
        {
            errors.Add($"{field} must be between {MemorySize.Format(MinDiskBytes)} and {MemorySize.Format(disks.MaxBytes / 4096 * 4096)} (the size of the file system holding the data directory)");
            return null;
        }

        return bytes / 4096 * 4096;
    }

    private static bool TryReadMemory(JsonElement element, out long bytes)
    {
        bytes = 0;
        return element.ValueKind switch
        {
            JsonValueKind.String => MemorySize.TryParse(element.GetString()!, out bytes),
            JsonValueKind.Number => element.TryGetInt64(out bytes) && bytes > 0,
            _ => false,
        };
    }

    private static string RandomName() => "hb-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(5));

    private static string Truncate(string s) => s.Length <= 70 ? s : s[..70].ToString(CultureInfo.InvariantCulture) + "…";
}
