using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hive.Client;

namespace Hive.Cli;

/// <summary>The `hive` command tree (System.CommandLine): each verb is one call or two of the C# SDK (<see cref="HiveClient"/>).</summary>
internal static class CommandTree
{
    private static readonly Option<string> ApiUrl = new("--api-url")
    {
        Description = "Controller URL (env HIVEBOX_API_URL; default http://127.0.0.1:7070)",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("HIVEBOX_API_URL") is { Length: > 0 } u ? u : "http://127.0.0.1:7070",
    };

    private static readonly Option<string?> ApiKey = new("--api-key")
    {
        Description = "API key (env HIVEBOX_API_KEY)",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("HIVEBOX_API_KEY"),
    };

    private static readonly Option<bool> Json = new("--json") { Description = "Print the API's JSON instead of a table" };

    public static RootCommand Build()
    {
        var root = new RootCommand("hive — persistent, governed sandboxes for AI agents. Talks to the Hive Controller's REST API.");
        root.Options.Add(ApiUrl);
        root.Options.Add(ApiKey);
        root.Subcommands.Add(new Command("daemon", "Run the Controller in the foreground (all further arguments go to it; see `hive daemon --help`)"));
        root.Subcommands.Add(Create());
        root.Subcommands.Add(List());
        root.Subcommands.Add(Status());
        root.Subcommands.Add(Exec());
        root.Subcommands.Add(Copy());
        root.Subcommands.Add(Remove());
        root.Subcommands.Add(EventsCommand.Build(Client, Json));
        root.Subcommands.Add(SecretsCommand.Build(Client, Json));
        root.Subcommands.Add(McpCommand.Build(ApiUrl, ApiKey));
        return root;
    }

    /// <summary>The Controller URL the command line names (for messages about reaching it).</summary>
    public static string ApiUrlOf(ParseResult parse) => parse.GetValue(ApiUrl) ?? "http://127.0.0.1:7070";

    private static HiveClient Client(ParseResult parse) => Api.Connect(parse.GetValue(ApiUrl)!, parse.GetValue(ApiKey));

    /// <summary>The API's JSON as the CLI prints it (<c>--json</c>, <c>status</c>).</summary>
    private static JsonNode Node(JsonElement element) => JsonNode.Parse(element.GetRawText())!;

    private static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "Sandbox name (a-z, 0-9, '.', '_', '-'; random if omitted)", Arity = ArgumentArity.ZeroOrOne };
        var image = new Option<string?>("--image") { Description = "Image (default base)" };
        var memory = new Option<string?>("--memory", "-m") { Description = "Memory limit, e.g. 512m, 1g (default 512m)" };
        var cpus = new Option<double?>("--cpus") { Description = "CPU limit in cores (default 1.0)" };
        var pids = new Option<int?>("--pids") { Description = "Maximum number of processes (default 128)" };
        var disk = new Option<string?>("--disk") { Description = "Size of the sandbox's own files (its writable layer and /tmp), e.g. 2g (default: the server's, 10g)" };
        var timeout = new Option<int?>("--timeout") { Description = "Seconds until the sandbox is destroyed (default 3600, max 86400)" };
        var env = new Option<string[]>("--env", "-e") { Description = "Environment variable KEY=VALUE for every command (repeatable)", AllowMultipleArgumentsPerToken = false };
        var network = new Option<string?>("--network") { Description = "none (default), isolated or shared (egress through SbxProxy)" };
        var egress = new Option<string?>("--egress") { Description = "Egress rules: JSON like {\"allow\":[{\"host\":\"*.pypi.org\"}]} or @FILE (implies --network isolated)" };
        var group = new Option<string?>("--group") { Description = "Network shared: the group whose members reach each other as NAME.hive" };
        var command = new Command("create", "Create a sandbox") { name, image, memory, cpus, pids, disk, timeout, env, network, egress, group, Json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = Client(parse);
            EgressPolicy? rules = null;
            if (parse.GetValue(egress) is { } egressText)
            {
                var text = egressText.StartsWith('@') ? await File.ReadAllTextAsync(egressText[1..], ct) : egressText;
                try
                {
                    rules = JsonSerializer.Deserialize<EgressPolicy>(text, StrictJson) ?? throw new JsonException("null is not a policy");
                }
                catch (JsonException ex)
                {
                    throw new CliException($"--egress is not valid JSON: {ex.Message}", 2);
                }
            }

            var config = new SandboxConfig
            {
                Image = parse.GetValue(image),
                Memory = parse.GetValue(memory),
                Disk = parse.GetValue(disk),
                Cpus = parse.GetValue(cpus),
                Pids = parse.GetValue(pids),
                Timeout = parse.GetValue(timeout),
                Env = ParseEnv(parse.GetValue(env)) is { Count: > 0 } vars ? vars : null,
                Network = parse.GetValue(network),
                Group = parse.GetValue(group),
                Egress = rules,
            };
            var created = Node((await api.CreateSandboxAsync(parse.GetValue(name), config, ct)).Info.Raw);
            if (parse.GetValue(Json))
            {
                Console.WriteLine(created.ToJsonString(CliJson.Options));
            }
            else
            {
                var limits = created["limits"];
                var diskText = limits?["disk"] is { } d ? $", disk {d}" : string.Empty;
                Console.WriteLine($"{created["id"]}\t{created["status"]}\tmemory {limits?["memory"]}, cpus {limits?["cpus"]}, pids {limits?["pids"]}{diskText}, expires {created["expires_at"]}");
            }

            return 0;
        });
        return command;
    }

    private static Command List()
    {
        var command = new Command("ls", "List sandboxes") { Json };
        command.Aliases.Add("list");
        command.SetAction(async (parse, ct) =>
        {
            using var api = Client(parse);
            var sandboxes = await api.ListSandboxesAsync(ct);
            var list = new JsonObject
            {
                ["sandboxes"] = new JsonArray([.. sandboxes.Select(s => Node(s.Info.Raw))]),
                ["total"] = sandboxes.Count,
            };
            if (parse.GetValue(Json))
            {
                Console.WriteLine(list.ToJsonString(CliJson.Options));
                return 0;
            }

            var rows = new List<string[]> { new[] { "NAME", "STATUS", "IMAGE", "MEMORY", "CPUS", "UPTIME", "TTL", "COMMANDS" } };
            foreach (var s in list["sandboxes"]?.AsArray() ?? [])
            {
                rows.Add([
                    s!["id"]!.ToString(), s["status"]!.ToString(), s["image"]?.ToString() ?? "", s["memory"]?.ToString() ?? "",
                    s["cpus"]?.ToString() ?? "", Duration(s["uptime_seconds"]), Duration(s["ttl_seconds"]), s["commands_executed"]?.ToString() ?? "0",
                ]);
            }

            var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
            foreach (var row in rows)
            {
                Console.WriteLine(string.Join("  ", row.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd());
            }

            return 0;
        });
        return command;
    }

    private static Command Status()
    {
        var name = new Argument<string>("name") { Description = "Sandbox name" };
        var command = new Command("status", "Show one sandbox (JSON)") { name };
        command.SetAction(async (parse, ct) =>
        {
            using var api = Client(parse);
            var detail = await api.GetSandboxAsync(parse.GetValue(name)!, ct);
            Console.WriteLine(Node(detail.Info.Raw).ToJsonString(CliJson.Options));
            return 0;
        });
        return command;
    }

    private static Command Exec()
    {
        var name = new Argument<string>("name") { Description = "Sandbox name" };
        var argv = new Argument<string[]>("command") { Description = "Program and arguments, after `--` (passed verbatim; use `sh -c '…'` for shell syntax)", Arity = ArgumentArity.OneOrMore };
        var timeout = new Option<double?>("--timeout", "-t") { Description = "Kill the command after this many seconds (default: none)" };
        var cwd = new Option<string?>("--cwd", "-w") { Description = "Working directory inside the sandbox (absolute)" };
        var env = new Option<string[]>("--env", "-e") { Description = "Environment variable KEY=VALUE (repeatable)" };
        var command = new Command("exec", "Run a command in a sandbox; its exit code becomes hive's") { name, argv, timeout, cwd, env };
        command.SetAction(async (parse, ct) =>
        {
            using var api = Client(parse);
            var options = new ExecOptions
            {
                Cwd = parse.GetValue(cwd),
                Env = ParseEnv(parse.GetValue(env)) is { Count: > 0 } vars ? vars : null,
                Timeout = parse.GetValue(timeout) is { } t ? TimeSpan.FromSeconds(t) : null,
            };
            var result = await api.SandboxNamed(parse.GetValue(name)!).ExecAsync(ShellQuote.Join(parse.GetValue(argv)!), options, ct);
            await using (var stdout = Console.OpenStandardOutput())
            {
                await stdout.WriteAsync(System.Text.Encoding.UTF8.GetBytes(result.Stdout), ct);
            }

            await using (var stderr = Console.OpenStandardError())
            {
                await stderr.WriteAsync(System.Text.Encoding.UTF8.GetBytes(result.Stderr), ct);
            }

            if (result.TimedOut)
            {
                Console.Error.WriteLine("hive: command timed out and was killed");
            }

            if (result.OomKilled)
            {
                Console.Error.WriteLine("hive: the sandbox ran out of memory; a process was OOM-killed");
            }

            if (result.StdoutTruncated || result.StderrTruncated)
            {
                Console.Error.WriteLine("hive: output was truncated (redirect to a file in the sandbox and `hive cp` it out)");
            }

            return result.ExitCode;
        });
        return command;
    }

    private static Command Copy()
    {
        var source = new Argument<string>("source") { Description = "LOCAL_PATH or NAME:/path ('-' reads stdin)" };
        var destination = new Argument<string>("destination") { Description = "NAME:/path or LOCAL_PATH ('-' writes stdout)" };
        var command = new Command("cp", "Copy a file into or out of a sandbox (streamed, any size)") { source, destination };
        command.SetAction(async (parse, ct) =>
        {
            using var api = Client(parse);
            var from = parse.GetValue(source)!;
            var to = parse.GetValue(destination)!;
            if (Remote(to) is { } target && Remote(from) is null)
            {
                await using var input = from == "-" ? Console.OpenStandardInput() : OpenLocal(from);
                long? length = from == "-" ? null : new FileInfo(from).Length;
                var written = await api.SandboxNamed(target.Name).UploadFileAsync(target.Path, input, length, ct);
                Console.Error.WriteLine($"{written.Size} bytes -> {target.Name}:{written.Path}");
                return 0;
            }

            if (Remote(from) is { } origin && Remote(to) is null)
            {
                var sandbox = api.SandboxNamed(origin.Name);
                if (to == "-")
                {
                    await using var stdout = Console.OpenStandardOutput();
                    await using var body = await sandbox.OpenReadAsync(origin.Path, ct);
                    await body.CopyToAsync(stdout, 64 * 1024, ct);
                    return 0;
                }

                var local = Directory.Exists(to) ? Path.Combine(to, Path.GetFileName(origin.Path)) : to;
                var temp = local + ".hive-partial";
                try
                {
                    await using (var body = await sandbox.OpenReadAsync(origin.Path, ct))
                    await using (var output = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 64 * 1024, useAsync: true))
                    {
                        await body.CopyToAsync(output, 64 * 1024, ct);
                    }

                    File.Move(temp, local, overwrite: true);
                }
                finally
                {
                    File.Delete(temp);
                }

                return 0;
            }

            throw new CliException("exactly one of source and destination must be NAME:/path", 2);
        });
        return command;
    }

    private static Command Remove()
    {
        var names = new Argument<string[]>("names") { Description = "Sandboxes to destroy", Arity = ArgumentArity.OneOrMore };
        var command = new Command("rm", "Destroy sandboxes (container, files, network namespace: everything)") { names };
        command.SetAction(async (parse, ct) =>
        {
            using var api = Client(parse);
            var failed = 0;
            foreach (var name in parse.GetValue(names)!)
            {
                try
                {
                    await api.SandboxNamed(name).DestroyAsync(ct);
                    Console.WriteLine(name);
                }
                catch (HiveApiException ex)
                {
                    Console.Error.WriteLine($"hive: {name}: {Api.Describe(ex, ApiUrlOf(parse))}");
                    failed++;
                }
            }

            return failed == 0 ? 0 : 1;
        });
        return command;
    }

    private static (string Name, string Path)? Remote(string spec)
    {
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || spec.StartsWith('/') || spec.StartsWith('.'))
        {
            return null;
        }

        var path = spec[(colon + 1)..];
        return (spec[..colon], path.StartsWith('/') ? path : "/" + path);
    }

    private static FileStream OpenLocal(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, useAsync: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read {path}: {ex.Message}");
        }
    }

    /// <summary>Egress rules as the user wrote them: a field the SDK does not know is an error, never silently dropped.</summary>
    private static readonly JsonSerializerOptions StrictJson = new(CliJson.Options) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };

    private static Dictionary<string, string> ParseEnv(string[]? pairs)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs ?? [])
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new CliException($"--env expects KEY=VALUE, got '{pair}'", 2);
            }

            env[pair[..eq]] = pair[(eq + 1)..];
        }

        return env;
    }

    private static string Duration(JsonNode? seconds)
    {
        if (seconds is null)
        {
            return "-";
        }

        var s = seconds.GetValue<long>();
        return s switch
        {
            < 60 => s.ToString(CultureInfo.InvariantCulture) + "s",
            < 3600 => $"{s / 60}m{s % 60:00}s",
            _ => $"{s / 3600}h{s % 3600 / 60:00}m",
        };
    }
}
