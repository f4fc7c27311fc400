//! Parquet output: writer properties from the options, row groups encoded in parallel (each worker
//! encodes its own block's, or partition's, row group with `ArrowColumnWriter`s), appended in order
//! by one thread.

use crate::csv::options::{Codec, Options};
use crate::error::{Error, Result};
use crate::io::AtomicFile;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use std::path::PathBuf;
use std::sync::Arc;

/// The zstd level when the options give none.
pub const DEFAULT_ZSTD_LEVEL: i32 = 2;

pub fn writer_props(o: &Options) -> Result<Arc<WriterProperties>> {
    let compression = match o.compression {
        Codec::Zstd => {
            // Level 2, not zstd's usual 3: ~6% less CPU for the whole run on the benchmark file,
            // output 5% larger and still no larger than DuckDB's (docs/csv-to-parquet.md).
            let level = ZstdLevel::try_new(o.compression_level.unwrap_or(DEFAULT_ZSTD_LEVEL))
                .map_err(|e| Error::options(format!("compression_level: {e}")))?;
            Compression::ZSTD(level)
        }
        Codec::Snappy => Compression::SNAPPY,
        Codec::Lz4 => Compression::LZ4_RAW,
        Codec::None => Compression::UNCOMPRESSED,
    };
    let stats = if o.statistics {
        EnabledStatistics::Chunk
    } else {
        EnabledStatistics::None
    };
    Ok(Arc::new(
        WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(compression)
            .set_dictionary_enabled(o.dictionary)
            .set_statistics_enabled(stats)
            .set_max_row_group_row_count(Some(o.row_group_size))
            .set_data_page_size_limit(o.page_size.max(4096))
            // Pages end by size only (the default also ends them every 20,000 rows): zstd finds
            // repeated text across a whole page, so long pages of a text column compress far
            // better (the benchmark's comment column: -20% at 8 MiB pages).
            .set_data_page_row_count_limit(usize::MAX)
            .set_created_by(format!("aerofs {}", env!("CARGO_PKG_VERSION")))
            .build(),
    ))
}

/// One Parquet output being written row group by row group under a temporary name.
pub struct ParquetSink {
    writer: SerializedFileWriter<AtomicFile>,
    factory: ArrowRowGroupWriterFactory,
    row_groups: usize,
    pub rows: u64,
}

impl ParquetSink {
    pub fn create(dest: &str, schema: &SchemaRef, props: &Arc<WriterProperties>) -> Result<Self> {
        let file = AtomicFile::create(dest)?;
        let w = ArrowWriter::try_new(file, schema.clone(), Some((**props).clone()))?;
        let (writer, factory) = w.into_serialized_writer()?;
        Ok(ParquetSink {
            writer,
            factory,
            row_groups: 0,
            rows: 0,
        })
    }

    /// Column writers for the next row group, to be filled on a worker thread by [`encode`].
    pub fn column_writers(&mut self) -> Result<Vec<ArrowColumnWriter>> {
        let w = self.factory.create_column_writers(self.row_groups)?;
        self.row_groups += 1;
        Ok(w)
    }

    pub fn append(&mut self, chunks: Vec<ArrowColumnChunk>, rows: u64) -> Result<()> {
        let mut rg = self.writer.next_row_group()?;
        for c in chunks {
            c.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
        self.rows += rows;
        Ok(())
    }

    /// Write the footer and rename into place; returns the path and its size.
    pub fn commit(self) -> Result<(PathBuf, u64)> {
        let file = self.writer.into_inner()?;
        let path = file.commit()?;
        let size = crate::io::file_size(&path)?;
        Ok((path, size))
    }
}

/// Write `batch` into a row group's open column writers (partitioned layout: a row group is fed
/// from several blocks before it is closed).
pub fn write_into(batch: &RecordBatch, writers: &mut [ArrowColumnWriter]) -> Result<()> {
    let schema = batch.schema();
    for ((field, col), w) in schema.fields().iter().zip(batch.columns()).zip(writers) {
        for leaf in compute_leaves(field, col)? {
            w.write(&leaf)?;
        }
    }
    Ok(())
}

/// Encode `batch` as one row group's column chunks (runs on a worker thread).
pub fn encode(
    batch: &RecordBatch,
    writers: Vec<ArrowColumnWriter>,
) -> Result<Vec<ArrowColumnChunk>> {
    let schema = batch.schema();
    let mut out = Vec::with_capacity(writers.len());
    for ((field, col), mut w) in schema.fields().iter().zip(batch.columns()).zip(writers) {
        for leaf in compute_leaves(field, col)? {
            w.write(&leaf)?;
        }
        out.push(w.close()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::schema::types::ColumnPath;

    fn codec(json: &str) -> Result<Compression> {
        let props = writer_props(&Options::from_json(json)?)?;
        Ok(props.compression(&ColumnPath::from("any")))
    }

    #[test]
    fn zstd_level_defaults_to_two_and_follows_the_option() {
        let two = Compression::ZSTD(ZstdLevel::try_new(2).unwrap());
        assert_eq!(codec("{}").unwrap(), two);
        let nine = Compression::ZSTD(ZstdLevel::try_new(9).unwrap());
        assert_eq!(codec(r#"{"compression_level": 9}"#).unwrap(), nine);
        assert_eq!(
            codec(r#"{"compression": "snappy"}"#).unwrap(),
            Compression::SNAPPY
        );
        let e = codec(r#"{"compression_level": 99}"#).unwrap_err();
        assert!(e.to_string().contains("compression_level"), "{e}");
    }
}
