using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Recsys.DenseCompute.Gemm;

namespace Recsys.DenseCompute.Quantized;

// Generated shape: every accumulator is its own local (the JIT keeps only locals in registers).

/// <summary>
/// Avx512BW tile with 16-bit accumulation: up to 8 rows x 32 columns (16 zmm int32 accumulators).
/// <c>vpmaddubsw</c> multiplies 64 u8 activations by 64 s8 weights and adds adjacent pairs into 32 s16 lanes;
/// with a two-group chunk a <c>vpaddsw</c> adds the next group's pairs in 16 bits; then <c>vpmaddwd</c> by ones
/// widens adjacent s16 lanes into the int32 accumulator. Exact by construction of the packed weights (see
/// <see cref="Int8WeightPacking"/>): no 16-bit partial sum can reach the saturation bounds.
/// </summary>
internal static unsafe class Madd16Int8Kernel
{
    public const int MaxRows = 8;

    public static void Tile(int rows, byte* a, int lda, sbyte* b, int groups, int* acc, int chunk)
    {
        if (chunk == 2)
        {
            switch (rows)
            {
                case 1: Tile<Rows1, Chunk2>(a, lda, b, groups, acc); return;
                case 2: Tile<Rows2, Chunk2>(a, lda, b, groups, acc); return;
                case 3: Tile<Rows3, Chunk2>(a, lda, b, groups, acc); return;
                case 4: Tile<Rows4, Chunk2>(a, lda, b, groups, acc); return;
                case 5: Tile<Rows5, Chunk2>(a, lda, b, groups, acc); return;
                case 6: Tile<Rows6, Chunk2>(a, lda, b, groups, acc); return;
                case 7: Tile<Rows7, Chunk2>(a, lda, b, groups, acc); return;
                case 8: Tile<Rows8, Chunk2>(a, lda, b, groups, acc); return;
            }
        }
        else
        {
            switch (rows)
            {
                case 1: Tile<Rows1, Chunk1>(a, lda, b, groups, acc); return;
                case 2: Tile<Rows2, Chunk1>(a, lda, b, groups, acc); return;
                case 3: Tile<Rows3, Chunk1>(a, lda, b, groups, acc); return;
                case 4: Tile<Rows4, Chunk1>(a, lda, b, groups, acc); return;
                case 5: Tile<Rows5, Chunk1>(a, lda, b, groups, acc); return;
                case 6: Tile<Rows6, Chunk1>(a, lda, b, groups, acc); return;
                case 7: Tile<Rows7, Chunk1>(a, lda, b, groups, acc); return;
                case 8: Tile<Rows8, Chunk1>(a, lda, b, groups, acc); return;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(rows), rows, "tile height must be 1..8");
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TRows, TChunk>(byte* a, int lda, sbyte* b, int groups, int* acc)
        where TRows : struct, IRowCount
        where TChunk : struct, IRowCount
    {
        int r = TRows.Value;
        bool two = TChunk.Value == 2;
        Vector512<int> z = Vector512<int>.Zero;
        Vector512<short> ones = Vector512.Create((short)1);
        Vector512<int> c0a = z, c0b = z, c1a = z, c1b = z, c2a = z, c2b = z, c3a = z, c3b = z, c4a = z, c4b = z, c5a = z, c5b = z, c6a = z, c6b = z, c7a = z, c7b = z;
        int step = two ? 2 : 1;
        for (int g = 0; g < groups; g += step)
        {
            Vector512<sbyte> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 64);
            if (two)
            {
                Vector512<sbyte> b2 = Vector512.Load(b + 128), b3 = Vector512.Load(b + 192);
                Vector512<byte> av, aw;
                Vector512<short> s;
                { av = Vector512.Create(*(int*)(a + (0 * lda))).AsByte(); aw = Vector512.Create(*(int*)(a + (0 * lda) + 4)).AsByte(); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b0), Avx512BW.MultiplyAddAdjacent(aw, b2)); c0a += Avx512BW.MultiplyAddAdjacent(s, ones); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b1), Avx512BW.MultiplyAddAdjacent(aw, b3)); c0b += Avx512BW.MultiplyAddAdjacent(s, ones); }
                if (r > 1) { av = Vector512.Create(*(int*)(a + (1 * lda))).AsByte(); aw = Vector512.Create(*(int*)(a + (1 * lda) + 4)).AsByte(); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b0), Avx512BW.MultiplyAddAdjacent(aw, b2)); c1a += Avx512BW.MultiplyAddAdjacent(s, ones); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b1), Avx512BW.MultiplyAddAdjacent(aw, b3)); c1b += Avx512BW.MultiplyAddAdjacent(s, ones); }
                if (r > 2) { av = Vector512.Create(*(int*)(a + (2 * lda))).AsByte(); aw = Vector512.Create(*(int*)(a + (2 * lda) + 4)).AsByte(); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b0), Avx512BW.MultiplyAddAdjacent(aw, b2)); c2a += Avx512BW.MultiplyAddAdjacent(s, ones); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b1), Avx512BW.MultiplyAddAdjacent(aw, b3)); c2b += Avx512BW.MultiplyAddAdjacent(s, ones); }
                if (r > 3) { av = Vector512.Create(*(int*)(a + (3 * lda))).AsByte(); aw = Vector512.Create(*(int*)(a + (3 * lda) + 4)).AsByte(); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b0), Avx512BW.MultiplyAddAdjacent(aw, b2)); c3a += Avx512BW.MultiplyAddAdjacent(s, ones); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b1), Avx512BW.MultiplyAddAdjacent(aw, b3)); c3b += Avx512BW.MultiplyAddAdjacent(s, ones); }
                if (r > 4) { av = Vector512.Create(*(int*)(a + (4 * lda))).AsByte(); aw = Vector512.Create(*(int*)(a + (4 * lda) + 4)).AsByte(); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b0), Avx512BW.MultiplyAddAdjacent(aw, b2)); c4a += Avx512BW.MultiplyAddAdjacent(s, ones); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b1), Avx512BW.MultiplyAddAdjacent(aw, b3)); c4b += Avx512BW.MultiplyAddAdjacent(s, ones); }
                if (r > 5) { av = Vector512.Create(*(int*)(a + (5 * lda))).AsByte(); aw = Vector512.Create(*(int*)(a + (5 * lda) + 4)).AsByte(); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b0), Avx512BW.MultiplyAddAdjacent(aw, b2)); c5a += Avx512BW.MultiplyAddAdjacent(s, ones); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b1), Avx512BW.MultiplyAddAdjacent(aw, b3)); c5b += Avx512BW.MultiplyAddAdjacent(s, ones); }
                if (r > 6) { av = Vector512.Create(*(int*)(a + (6 * lda))).AsByte(); aw = Vector512.Create(*(int*)(a + (6 * lda) + 4)).AsByte(); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b0), Avx512BW.MultiplyAddAdjacent(aw, b2)); c6a += Avx512BW.MultiplyAddAdjacent(s, ones); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b1), Avx512BW.MultiplyAddAdjacent(aw, b3)); c6b += Avx512BW.MultiplyAddAdjacent(s, ones); }
                if (r > 7) { av = Vector512.Create(*(int*)(a + (7 * lda))).AsByte(); aw = Vector512.Create(*(int*)(a + (7 * lda) + 4)).AsByte(); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b0), Avx512BW.MultiplyAddAdjacent(aw, b2)); c7a += Avx512BW.MultiplyAddAdjacent(s, ones); s = Avx512BW.AddSaturate(Avx512BW.MultiplyAddAdjacent(av, b1), Avx512BW.MultiplyAddAdjacent(aw, b3)); c7b += Avx512BW.MultiplyAddAdjacent(s, ones); }
                a += 8;
                b += 256;
            }
            else
            {
                Vector512<byte> av;
                { av = Vector512.Create(*(int*)(a + (0 * lda))).AsByte(); c0a += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b0), ones); c0b += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b1), ones); }
                if (r > 1) { av = Vector512.Create(*(int*)(a + (1 * lda))).AsByte(); c1a += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b0), ones); c1b += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b1), ones); }
                if (r > 2) { av = Vector512.Create(*(int*)(a + (2 * lda))).AsByte(); c2a += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b0), ones); c2b += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b1), ones); }
                if (r > 3) { av = Vector512.Create(*(int*)(a + (3 * lda))).AsByte(); c3a += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b0), ones); c3b += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b1), ones); }
                if (r > 4) { av = Vector512.Create(*(int*)(a + (4 * lda))).AsByte(); c4a += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b0), ones); c4b += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b1), ones); }
                if (r > 5) { av = Vector512.Create(*(int*)(a + (5 * lda))).AsByte(); c5a += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b0), ones); c5b += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b1), ones); }
                if (r > 6) { av = Vector512.Create(*(int*)(a + (6 * lda))).AsByte(); c6a += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b0), ones); c6b += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b1), ones); }
                if (r > 7) { av = Vector512.Create(*(int*)(a + (7 * lda))).AsByte(); c7a += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b0), ones); c7b += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(av, b1), ones); }
                a += 4;
                b += 128;
            }
        }

        { Vector512.Store(c0a, acc + (0 * 32)); Vector512.Store(c0b, acc + (0 * 32) + 16); }
        if (r > 1) { Vector512.Store(c1a, acc + (1 * 32)); Vector512.Store(c1b, acc + (1 * 32) + 16); }
        if (r > 2) { Vector512.Store(c2a, acc + (2 * 32)); Vector512.Store(c2b, acc + (2 * 32) + 16); }
        if (r > 3) { Vector512.Store(c3a, acc + (3 * 32)); Vector512.Store(c3b, acc + (3 * 32) + 16); }
        if (r > 4) { Vector512.Store(c4a, acc + (4 * 32)); Vector512.Store(c4b, acc + (4 * 32) + 16); }
        if (r > 5) { Vector512.Store(c5a, acc + (5 * 32)); Vector512.Store(c5b, acc + (5 * 32) + 16); }
        if (r > 6) { Vector512.Store(c6a, acc + (6 * 32)); Vector512.Store(c6b, acc + (6 * 32) + 16); }
        if (r > 7) { Vector512.Store(c7a, acc + (7 * 32)); Vector512.Store(c7b, acc + (7 * 32) + 16); }
    }
}
