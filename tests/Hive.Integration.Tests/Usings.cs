global using Hive.Testing;
global using NUnit.Framework;

[assembly: Parallelizable(ParallelScope.None)]
