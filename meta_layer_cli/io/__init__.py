"""File formats in and out: FASTA, GTF/GFF3, annotation tables, VCF, tables, one-hot DNA, built-in data."""
