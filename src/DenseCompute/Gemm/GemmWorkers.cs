using System.Runtime.ExceptionServices;

namespace Recsys.DenseCompute.Gemm;

/// <summary>
/// Dedicated threads that take the other parts of a multi-threaded Forward. A Forward is
/// a few to a few hundred microseconds, so waking pool threads through a queue per call
/// would cost a large share of it: the workers spin briefly on an event between calls
/// (consecutive layers of an MLP arrive back to back) and sleep after that.
/// One multi-threaded call runs at a time; a concurrent caller does its work alone.
/// </summary>
internal static class GemmWorkers
{
    private static readonly Lock s_gate = new();
    private static Worker[] s_workers = [];

    public static void Run(in GemmProblem problem, GemmPath path, int parts)
    {
        int maxRows = GemmPaths.MaxRows(path);
        if (!s_gate.TryEnter())
        {
            GemmDriver.Run(problem, path, 0, problem.M, 0, problem.PanelCount);
            return;
        }

        try
        {
            Worker[] workers = EnsureWorkers(parts - 1);
            for (int w = 0; w < parts - 1; w++) workers[w].Start(problem, path, parts, w + 1);
            problem.Partition(parts, 0, maxRows, out int m0, out int m1, out int p0, out int p1);
            GemmDriver.Run(problem, path, m0, m1, p0, p1);
            Exception? error = null;
            for (int w = 0; w < parts - 1; w++) error ??= workers[w].Wait();
            if (error is not null) ExceptionDispatchInfo.Throw(error);
        }
        finally
        {
            s_gate.Exit();
        }
    }

    private static Worker[] EnsureWorkers(int count)
    {
        if (s_workers.Length >= count) return s_workers;
        var workers = new Worker[count];
        s_workers.CopyTo(workers, 0);
        for (int i = s_workers.Length; i < count; i++) workers[i] = new Worker(i + 1);
        s_workers = workers;
        return workers;
    }

    private sealed class Worker
    {
        // Spin long enough to bridge the gap between two layers of one forward pass.
        private const int SpinCount = 2047;
        private readonly ManualResetEventSlim _start = new(false, SpinCount);
        private readonly ManualResetEventSlim _done = new(false, SpinCount);
        private GemmProblem _problem;
        private GemmPath _path;
        private int _parts;
        private int _index;
        private Exception? _error;

        public Worker(int id)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"gemm-worker-{id}" };
            thread.Start();
        }

        public void Start(in GemmProblem problem, GemmPath path, int parts, int index)
        {
            _problem = problem;
            _path = path;
            _parts = parts;
            _index = index;
            _error = null;
            _done.Reset();
            _start.Set();
        }

        public Exception? Wait()
        {
            _done.Wait();
            return _error;
        }

        private void Loop()
        {
            while (true)
            {
                _start.Wait();
                _start.Reset();
                try
                {
                    _problem.Partition(_parts, _index, GemmPaths.MaxRows(_path), out int m0, out int m1, out int p0, out int p1);
                    GemmDriver.Run(_problem, _path, m0, m1, p0, p1);
                }
                catch (Exception e)
                {
                    _error = e;
                }

                _done.Set();
            }
        }
    }
}
