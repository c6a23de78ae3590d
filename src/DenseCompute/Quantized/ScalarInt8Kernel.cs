namespace Recsys.DenseCompute.Quantized;

/// <summary>The portable tile over the same packed layout, for CPUs without AvxVnni or Avx512BW; also the tests' second opinion.</summary>
internal static unsafe class ScalarInt8Kernel
{
    public const int MaxRows = 4;

    public static void Tile(int rows, byte* a, int lda, sbyte* b, int groups, int* acc)
    {
        for (int i = 0; i < rows; i++)
        {
            int* row = acc + (i * 32);
            for (int j = 0; j < 32; j++) row[j] = 0;
            byte* ai = a + ((long)i * lda);
            for (int g = 0; g < groups; g++)
            {
                sbyte* bg = b + (g * 128);
                byte* ag = ai + (g * 4);
                for (int j = 0; j < 32; j++)
                {
                    sbyte* w = bg + (j * 4);
                    row[j] += (ag[0] * w[0]) + (ag[1] * w[1]) + (ag[2] * w[2]) + (ag[3] * w[3]);
                }
            }
        }
    }
}
